import Foundation
import InMemoryLogging
import Logging
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing

@testable import SluiceAPI

/// The dashboard's pages and its cookie sessions through a real socket (docs/dashboard.md): the pages and their
/// headers, sign-in, the cookie's attributes, CSRF on every change made with the cookie, roles, sign-out, revocation,
/// and bearer tokens working as before. Requests go through curl, which keeps no cookies of its own.
@Suite struct DashboardSessionTests {
    struct Reply {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
        func json() -> [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
    }

    static func request(
        _ method: String, _ url: URL, _ path: String, cookie: String? = nil, csrf: String? = nil, bearer: String? = nil,
        json: String? = nil, contentType: String = "application/json"
    ) async throws -> Reply {
        var headers: [(name: String, value: String)] = []
        if let cookie { headers.append(("Cookie", "theme=dark; sluice_session=\(cookie)")) }
        if let csrf { headers.append(("X-CSRF-Token", csrf)) }
        if let bearer { headers.append(("Authorization", "Bearer \(bearer)")) }
        if json != nil { headers.append(("Content-Type", contentType)) }
        let response = try await CurlClient().execute(
            HTTPRequest(
                method: method, url: url.absoluteString + path, headers: headers, body: json.map { Data($0.utf8) },
                retry: .init(maxAttempts: 1)))
        return Reply(status: response.status, headers: response.headers, body: response.body)
    }

    /// Signs in with `role`'s token: the session cookie's value and the CSRF token.
    static func signIn(_ url: URL, _ role: Role) async throws -> (cookie: String, csrf: String, reply: Reply) {
        let reply = try await request("POST", url, "/v1/session", json: #"{"token": "\#(TestTokens.token(role))"}"#)
        try #require(reply.status == 201, "sign-in: \(reply.status) \(reply.text)")
        let setCookie = try #require(reply.header("Set-Cookie"))
        let value = String(setCookie.split(separator: ";")[0].dropFirst("sluice_session=".count))
        return (value, try #require(reply.json()["csrf"] as? String), reply)
    }

    @Test func pagesAreServedWithAStrictPolicyAndGETSlashRedirects() async throws {
        try await withAPIServer { url, _, _ in
            let root = try await Self.request("GET", url, "/")
            #expect(root.status == 303)
            #expect(root.header("Location") == "/ui/")
            var total = 0
            for (path, type) in [
                ("/ui/", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css"),
                ("/ui/icon.svg", "image/svg+xml"),
            ] {
                let page = try await Self.request("GET", url, path)
                #expect(page.status == 200, "\(path)")
                #expect(
                    page.header("Content-Type")?.hasPrefix(type) == true,
                    "\(path): \(page.header("Content-Type") ?? "")")
                let policy = try #require(page.header("Content-Security-Policy"), "\(path)")
                for directive in [
                    "default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                ] {
                    #expect(policy.contains(directive), "\(path): \(policy)")
                }
                #expect(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"))
                #expect(page.header("X-Content-Type-Options") == "nosniff")
                if path != "/ui/" { total += page.body.count }
                if path == "/ui/" {
                    // No inline script or style in the page: the policy would block them anyway.
                    #expect(
                        !page.text.contains("<script>") && !page.text.contains("style=")
                            && !page.text.contains("<style"))
                    #expect(page.text.contains(#"<script src="/ui/app.js""#))
                    total += page.body.count
                }
            }
            #expect(total < 200_000, "the dashboard weighs \(total) bytes")
            let missing = try await Self.request("GET", url, "/ui/nothing.js")
            #expect(missing.status == 404)
            #expect(missing.header("Content-Security-Policy") != nil)
            // No asset is fetched from outside: every URL in the page and the script is this server's.
            let script = try await Self.request("GET", url, "/ui/app.js")
            #expect(!script.text.contains("http://") || script.text.contains("http://www.w3.org/2000/svg"))
            #expect(!script.text.contains("https://"))
            #expect(!script.text.contains("innerHTML") && !script.text.contains("insertAdjacentHTML"))
        }
    }

    @Test func signInGivesAnHttpOnlyStrictCookieAndTheTokenNeverComesBack() async throws {
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "dashboard") { _ in logs }
        logger.logLevel = .trace
        let token = TestTokens.token(.oncall)
        try await withAPIServer(logger: logger) { url, _, _ in
            let (cookie, csrf, reply) = try await Self.signIn(url, .oncall)
            let setCookie = try #require(reply.header("Set-Cookie"))
            for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
                #expect(setCookie.contains(attribute), "\(setCookie)")
            }
            #expect(!setCookie.contains("Secure"), "no TLS, no Secure: the browser would drop the cookie")
            #expect(cookie.count == 64 && csrf.count == 64 && cookie != csrf)
            #expect(!reply.text.contains(token) && !setCookie.contains(token))
            #expect(reply.json()["name"] as? String == TestTokens.name(.oncall))
            #expect(reply.json()["role"] as? String == "oncall")

            let me = try await Self.request("GET", url, "/v1/session", cookie: cookie)
            #expect(me.status == 200)
            #expect(me.json()["csrf"] as? String == csrf)
            #expect(!me.text.contains(token))

            let wrong = try await Self.request("POST", url, "/v1/session", json: #"{"token": "nope"}"#)
            #expect(wrong.status == 401)
            #expect(wrong.header("Set-Cookie") == nil)
            // A cross-site form can post only form encodings: not accepted.
            let form = try await Self.request(
                "POST", url, "/v1/session", json: "token=\(token)", contentType: "application/x-www-form-urlencoded")
            #expect(form.status == 400)
            #expect(form.header("Set-Cookie") == nil)
            #expect(try await Self.request("GET", url, "/v1/session").status == 401)
            #expect(
                try await Self.request("GET", url, "/v1/session", cookie: String(repeating: "0", count: 64)).status
                    == 401)
        }
        let said = logs.entries.map { "\($0.level) \($0.message) \($0.metadata)" }.joined(separator: "\n")
        #expect(said.contains("dashboard session started"), "\(said)")
        #expect(!said.contains(token), "a log line holds the token")
    }

    @Test func aChangeMadeWithTheCookieNeedsTheSessionsCSRFTokenAndTheRole() async throws {
        try await withAPIServer { url, backend, _ in
            let started = try await Self.request(
                "POST", url, "/v1/rollouts", bearer: TestTokens.token(.ci),
                json: #"{"strategy":"shop/checkout","version":"v2"}"#)
            try #require(started.status == 201, "\(started.text)")
            let id = try #require(started.json()["id"] as? String)
            let oncall = try await Self.signIn(url, .oncall)
            let viewer = try await Self.signIn(url, .viewer)
            let reason = #"{"reason": "p99 doubled"}"#
            let rollback = "/v1/rollouts/\(id)/rollback"

            // Reads with the cookie need no CSRF token.
            #expect(try await Self.request("GET", url, "/v1/rollouts/\(id)", cookie: viewer.cookie).status == 200)
            #expect(
                try await Self.request("GET", url, "/v1/rollouts/\(id)/samples", cookie: viewer.cookie).status == 200)

            // Without the token, with another session's token, with a wrong one: 403, nothing done.
            for csrf in [nil, viewer.csrf, String(repeating: "a", count: 64), ""] as [String?] {
                let refused = try await Self.request(
                    "POST", url, rollback, cookie: oncall.cookie, csrf: csrf, json: reason)
                #expect(refused.status == 403, "csrf \(csrf ?? "none"): \(refused.text)")
            }
            let paused = try await Self.request("POST", url, "/v1/rollouts/\(id)/pause", cookie: oncall.cookie)
            #expect(paused.status == 403)
            #expect(paused.text.contains("X-CSRF-Token"))
            // The viewer's session with its own CSRF token: the role is refused.
            let forged = try await Self.request(
                "POST", url, rollback, cookie: viewer.cookie, csrf: viewer.csrf, json: reason)
            #expect(forged.status == 403)
            #expect(backend.commands.isEmpty)

            // On-call's session with its token: done, and the actor is the token's name.
            let done = try await Self.request(
                "POST", url, rollback, cookie: oncall.cookie, csrf: oncall.csrf, json: reason)
            #expect(done.status == 200, "\(done.text)")
            #expect(backend.commands.count == 1)
            #expect(backend.commands.first.map { "\($0.1)" }?.contains(TestTokens.name(.oncall)) == true)

            // Bearer tokens work as before, without a CSRF token; a bearer header wins over a cookie.
            let bearer = try await Self.request(
                "POST", url, "/v1/rollouts/\(id)/pause", bearer: TestTokens.token(.oncall))
            #expect(bearer.status == 200, "\(bearer.text)")
            let both = try await Self.request(
                "POST", url, "/v1/rollouts/\(id)/pause", cookie: oncall.cookie, bearer: TestTokens.token(.viewer))
            #expect(both.status == 403)

            // Sign-out needs the CSRF token too; then the cookie is dead.
            #expect(try await Self.request("DELETE", url, "/v1/session", cookie: oncall.cookie).status == 403)
            let out = try await Self.request("DELETE", url, "/v1/session", cookie: oncall.cookie, csrf: oncall.csrf)
            #expect(out.status == 200)
            #expect(out.header("Set-Cookie")?.contains("Max-Age=0") == true)
            #expect(try await Self.request("GET", url, "/v1/rollouts/\(id)", cookie: oncall.cookie).status == 401)
        }
    }

    @Test func aRevokedTokenEndsItsSessionsAndARoleChangeAppliesAtOnce() async throws {
        let directory = try makeTemporaryDirectory("sluice-dashboard")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/tokens.yaml"
        func write(_ entries: [TokenEntry]) throws {
            let lines = entries.map { "  - {name: \($0.name), role: \($0.role), sha256: \($0.sha256)}" }
            try ("tokens:\n" + lines.joined(separator: "\n") + "\n").write(
                toFile: path, atomically: true, encoding: .utf8)
        }
        let oncall = TokenEntry(name: "olivia", role: .oncall, sha256: TokenHash.hex(TestTokens.token(.oncall)))
        try write([oncall])
        try await withAPIServer(authenticator: try Authenticator(tokensFile: path)) { url, _, _ in
            let session = try await Self.signIn(url, .oncall)
            #expect(
                try await Self.request("GET", url, "/v1/session", cookie: session.cookie).json()["role"] as? String
                    == "oncall")
            try write([TokenEntry(name: "olivia", role: .viewer, sha256: oncall.sha256)])
            try await waitUntil("the role change to apply", timeout: .seconds(10)) {
                try await Self.request("GET", url, "/v1/session", cookie: session.cookie).json()["role"] as? String
                    == "viewer"
            }
            try write([TokenEntry(name: "someone-else", role: .viewer, sha256: TokenHash.hex("another token"))])
            try await waitUntil("the revocation to end the session", timeout: .seconds(10)) {
                try await Self.request("GET", url, "/v1/strategies", cookie: session.cookie).status == 401
            }
        }
    }

    @Test func theCookieIsSecureWhenTheAPIIsServedOverTLS() {
        let api = APIServer(
            backend: FakeBackend(signal: EventSignal()), authenticator: Authenticator(entries: []),
            signal: EventSignal(),
            logger: Logger(label: "test"), secureCookies: true)
        #expect(
            api.sessionCookie("abc", maxAge: 60)
                == "sluice_session=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure")
    }

    @Test func sessionsLastTheirLifetimeAndTheStoreIsBounded() async throws {
        let clock = Locked(Timestamp(millisecondsSinceEpoch: 1_800_000_000_000))
        let store = SessionStore(now: { clock.current }, limit: 3)
        let identity = Identity(name: "olivia", role: .oncall)
        let (staticID, staticSession) = try await store.create(identity: identity, tokenDigest: TokenHash.hex("token"))
        let (oidcID, oidcSession) = try await store.create(identity: identity, tokenDigest: nil)
        #expect(staticSession.expires == clock.current + .seconds(8 * 3600))
        #expect(oidcSession.expires == clock.current + .seconds(15 * 60), "an OIDC token's session: 15 minutes")
        #expect(staticSession.csrf != oidcSession.csrf && staticID != oidcID && staticID != staticSession.csrf)
        clock.withLock { $0 = $0 + .seconds(15 * 60) }
        #expect(try await store.session(id: oidcID) == nil)
        #expect(try await store.session(id: staticID) == staticSession)
        // Full: a new session pushes out the one closest to its end.
        let second = try await store.create(identity: identity, tokenDigest: "b").id
        let third = try await store.create(identity: identity, tokenDigest: "c").id
        _ = try await store.create(identity: identity, tokenDigest: "d")
        #expect(store.count == 3)
        #expect(try await store.session(id: staticID) == nil)
        #expect(try await store.session(id: second) != nil)
        #expect(try await store.session(id: third) != nil)
        clock.withLock { $0 = $0 + .seconds(8 * 3600) }
        #expect(try await store.session(id: second) == nil)
    }

    @Test func samplesOfEachCheckComeWithItsThreshold() async throws {
        try await withAPIServer { url, backend, _ in
            let started = try await Self.request(
                "POST", url, "/v1/rollouts", bearer: TestTokens.token(.ci),
                json: #"{"strategy":"shop/checkout","version":"v2"}"#)
            let id = try #require(started.json()["id"] as? String)
            backend.seedSamples(
                rollout: id,
                [
                    Sample(check: "error-rate", time: FakeBackend.epoch, value: 0.002, verdict: .pass),
                    Sample(check: "error-rate", time: FakeBackend.epoch + .seconds(10), value: 0.05, verdict: .breach),
                ])
            let reply = try await Self.request(
                "GET", url, "/v1/rollouts/\(id)/samples", bearer: TestTokens.token(.viewer))
            #expect(reply.status == 200, "\(reply.text)")
            let checks = reply.json()["checks"] as? [[String: Any]] ?? []
            #expect(checks.count == 1)
            #expect(checks.first?["name"] as? String == "error-rate")
            #expect(checks.first?["max"] as? Double == 0.01)
            let samples = checks.first?["samples"] as? [[String: Any]] ?? []
            #expect(samples.map { $0["verdict"] as? String } == ["pass", "breach"])
            #expect(samples.last?["value"] as? Double == 0.05)
            #expect(try await Self.request("GET", url, "/v1/rollouts/\(id)/samples").status == 401)
            #expect(
                try await Self.request("GET", url, "/v1/rollouts/nope/samples", bearer: TestTokens.token(.viewer))
                    .status == 404)
        }
    }
}
