import Foundation
import SluiceAPI
import SluiceHTTP
import SluiceTestSupport
import Testing

/// Dashboard sessions live in the store (docs/dashboard.md "Sign-in and sessions"): with two `sluice serve`
/// replicas on one PostgreSQL behind a load balancer, the browser's next request may reach either, so a session
/// made on one must work on the other, and a sign-out on one must end it on both. One replica on SQLite keeps its
/// sessions across a restart.
struct SessionReplicaTests {
    /// A browser's cookie and CSRF token, signed in on `server`.
    struct SignedIn {
        let cookie: String
        let csrf: String
    }

    static func signIn(_ server: ServeProcess) async throws -> SignedIn {
        let response = try await CurlClient().execute(
            HTTPRequest(
                method: "POST", url: server.url + "/v1/session", headers: [("Content-Type", "application/json")],
                body: Data(#"{"token": "\#(ServeProcess.token(.oncall))"}"#.utf8), retry: .init(maxAttempts: 1)))
        try #require(response.status == 201, "sign-in: \(response.status) \(String(decoding: response.body, as: UTF8.self))")
        let setCookie = try #require(response.headers.first { $0.0.lowercased() == "set-cookie" }?.1)
        let cookie = try #require(setCookie.split(separator: ";").first.map(String.init))
        let body = try #require(try JSONSerialization.jsonObject(with: response.body) as? [String: Any])
        return SignedIn(cookie: cookie, csrf: try #require(body["csrf"] as? String, "\(body)"))
    }

    /// `method /v1/session` on `server` with the browser's cookie (and CSRF token for DELETE): the status.
    static func session(_ method: String, _ server: ServeProcess, _ browser: SignedIn) async throws -> Int {
        var headers = [("Cookie", browser.cookie)]
        if method != "GET" { headers.append(("X-CSRF-Token", browser.csrf)) }
        return try await CurlClient().execute(
            HTTPRequest(method: method, url: server.url + "/v1/session", headers: headers, retry: .init(maxAttempts: 1))
        ).status
    }

    @Test
    func aSessionMadeOnOneReplicaWorksOnAnotherAndASignOutEndsItOnBoth() async throws {
        let cluster = try await PostgresCluster.shared()
        let database = try await cluster.createDatabase()
        let store = "database: \(cluster.url(database: database))\ndatabasePasswordFile: \(cluster.passwordFile)\n"
        let a = try await ServeProcess.start(store: store)
        defer { a.stop() }
        let b = try await ServeProcess.start(store: store)
        defer { b.stop() }
        let browser = try await Self.signIn(a)
        #expect(try await Self.session("GET", a, browser) == 200)
        #expect(try await Self.session("GET", b, browser) == 200, "the other replica knows the session")
        // The replica that made it dies; the session does not.
        try await a.restart(signal: SIGKILL)
        #expect(try await Self.session("GET", a, browser) == 200, "a restart signs nobody out")
        #expect(try await Self.session("DELETE", b, browser) == 200)
        #expect(try await Self.session("GET", a, browser) == 401, "signed out on b: gone on a too")
        #expect(try await Self.session("GET", b, browser) == 401)
        // Only the cookie's SHA-256 is in the database.
        let stored = try await cluster.sql("SELECT digest FROM sessions", database: database)
        #expect(!stored.contains(String(browser.cookie.split(separator: "=").last ?? "")))
    }

    @Test
    func oneReplicaOnSQLiteKeepsItsSessionsAcrossARestart() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let browser = try await Self.signIn(server)
        try await server.restart(signal: SIGTERM)
        #expect(try await Self.session("GET", server, browser) == 200)
    }
}
