import Foundation
import SluiceAPI
import SluiceCore
import Testing

/// Every route of docs/api.md with every caller: no token, an unknown token, and each role.
struct AuthTableTests {
    struct RouteCase: CustomTestStringConvertible, Sendable {
        var method: String
        var path: String
        var body: String?
        var contentType: String = "application/json"
        var needs: Role
        var testDescription: String { "\(method) \(path) needs \(needs)" }
    }

    static let routes: [RouteCase] = [
        RouteCase(method: "GET", path: "/v1/strategies", needs: .viewer),
        RouteCase(method: "GET", path: "/v1/strategies/shop/checkout", needs: .viewer),
        RouteCase(
            method: "PUT", path: "/v1/strategies/shop/checkout", body: "kind: Strategy\nspec: {}\n",
            contentType: "application/yaml", needs: .release),
        RouteCase(
            method: "POST", path: "/v1/rollouts",
            body: #"{"strategy":"checkout","namespace":"shop","version":"v2","supersede":true}"#, needs: .ci),
        RouteCase(method: "GET", path: "/v1/rollouts?strategy=shop/checkout&phase=Progressing", needs: .viewer),
        RouteCase(method: "GET", path: "/v1/rollouts/r-1", needs: .viewer),
        RouteCase(method: "POST", path: "/v1/rollouts/r-1/rollback", body: #"{"reason":"5xx on canary"}"#, needs: .oncall),
        RouteCase(method: "POST", path: "/v1/rollouts/r-1/promote", body: #"{"full":true}"#, needs: .oncall),
        RouteCase(method: "POST", path: "/v1/rollouts/r-1/pause", needs: .oncall),
        RouteCase(method: "POST", path: "/v1/rollouts/r-1/resume", needs: .oncall),
        RouteCase(method: "GET", path: "/v1/events?after=0&strategy=shop/checkout", needs: .viewer),
        RouteCase(method: "GET", path: "/v1/rollouts/r-1/samples", needs: .viewer),
    ]

    /// nil is "no token", "" is a token the server does not know.
    static let callers: [Role?] = [nil] + Role.allCases.map { $0 }

    @Test(arguments: routes)
    func everyCallerGetsTheDesignedStatus(route: RouteCase) async throws {
        try await withAPIServer { url, backend, metrics in
            _ = try await backend.startRollout(
                StrategyKey(namespace: "shop", name: "checkout"), version: "v1", actor: "seed", supersede: false)
            let body = route.body.map { Data($0.utf8) }
            let headers = ["Content-Type": route.contentType]

            let anonymous = try await send(route.method, url, route.path, body: body, headers: headers)
            #expect(anonymous.status == 401, "\(route.method) \(route.path) without a token")
            #expect(anonymous.errorCode == "unauthenticated")

            let stranger = try await send(route.method, url, route.path, token: "not-a-known-token", body: body, headers: headers)
            #expect(stranger.status == 401, "\(route.method) \(route.path) with an unknown token")

            var forbidden = 0
            for role in Role.allCases {
                let answer = try await send(route.method, url, route.path, token: TestTokens.token(role), body: body, headers: headers)
                if role.includes(route.needs) {
                    #expect((200..<300).contains(answer.status), "\(role) on \(route.method) \(route.path): \(answer.status) \(answer.text)")
                } else {
                    forbidden += 1
                    #expect(answer.status == 403, "\(role) on \(route.method) \(route.path): \(answer.status)")
                    #expect(answer.errorCode == "forbidden")
                }
            }
            #expect(metrics.authFailureCount(.missing) == 1)
            #expect(metrics.authFailureCount(.unknown) == 1)
            #expect(metrics.authFailureCount(.forbidden) == forbidden)
        }
    }

    @Test
    func rolesNestAsDesigned() {
        #expect(Role.admin.includes(.release) && Role.admin.includes(.ci) && Role.admin.includes(.viewer))
        #expect(Role.release.includes(.ci) && Role.release.includes(.oncall) && !Role.release.includes(.admin))
        #expect(Role.ci.includes(.viewer) && !Role.ci.includes(.oncall))
        #expect(Role.oncall.includes(.viewer) && !Role.oncall.includes(.ci))
        #expect(!Role.viewer.includes(.ci) && !Role.viewer.includes(.oncall))
    }

    @Test
    func commandsRecordTheTokenNameAsActor() async throws {
        try await withAPIServer { url, backend, _ in
            let started = try await send(
                "POST", url, "/v1/rollouts", token: TestTokens.token(.ci),
                body: Data(#"{"strategy":"shop/checkout","version":"v2"}"#.utf8))
            #expect(started.status == 201)
            #expect(backend.eventLog.last?.actor == TestTokens.name(.ci))
            let id = try started.json()["id"] as? String ?? ""
            let rolledBack = try await send(
                "POST", url, "/v1/rollouts/\(id)/rollback", token: TestTokens.token(.oncall),
                body: Data(#"{"reason":"errors on canary"}"#.utf8))
            #expect(rolledBack.status == 200)
            #expect(backend.commands.last?.1 == .rollback(actor: TestTokens.name(.oncall), reason: "errors on canary"))
        }
    }

    @Test
    func healthReadinessAndMetricsNeedNoToken() async throws {
        try await withAPIServer { url, backend, _ in
            #expect(try await send("GET", url, "/healthz").status == 200)
            #expect(try await send("GET", url, "/readyz").status == 200)
            backend.ready = false
            let notReady = try await send("GET", url, "/readyz")
            #expect(notReady.status == 503)
            #expect(notReady.errorCode == "unavailable")
            let metrics = try await send("GET", url, "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        }
    }
}
