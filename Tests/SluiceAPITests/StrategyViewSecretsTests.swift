import Foundation
import SluiceAPI
import SluiceCore
import Testing

/// `GET /v1/strategies[/NS/NAME]`: the source (which may hold header values and webhook URLs in clear) only for
/// `release` and `admin`; every role sees the redacted model.
@Suite struct StrategyViewSecretsTests {
    static let source = """
        apiVersion: sluice.dev/v1
        kind: Strategy
        metadata: {name: payments, namespace: shop}
        spec:
          target: {deployment: payments}
          traffic:
            gatewayAPI: {httpRoute: payments, stableService: payments, canaryService: payments-canary}
          stages:
            - {name: canary, weight: 5, hold: 30m}
            - {name: full, weight: 100}
          analysis:
            providers:
              prom:
                prometheus:
                  address: "http://prom-user:prom-pass@prometheus:9090/api/prom?tenant=t-secret"
                  headers: {X-Api-Key: written-key-secret, X-Env-Key: {fromEnv: PROM_KEY}}
              stats:
                web:
                  url: "https://stats.example.com/q?expr={{query}}&apikey=web-secret"
                  jsonPath: value
                  headers: {X-File-Key: {fromFile: /var/run/secrets/stats}}
            checks:
              - {name: error-rate, provider: prom, query: "rate(errors[1m])", max: 0.01}
          notifications:
            - {webhook: "https://hooks.slack.com/services/T000/B000/XXXXSECRET", on: [RolledBack]}

        """
    static let secrets = ["prom-user", "prom-pass", "t-secret", "written-key-secret", "web-secret", "XXXXSECRET", "/services"]

    static func seeded(_ backend: FakeBackend) throws {
        let result = StrategyLoader.load(yaml: source, file: "payments.yaml")
        #expect(result.errors == [])
        let strategy = try #require(result.strategies.first)
        backend.seed(
            AppliedStrategy(strategy: strategy, revision: 1, source: source, appliedAt: FakeBackend.epoch, appliedBy: "ci"))
    }

    @Test(arguments: Role.allCases)
    func theSourceOnlyForReleaseAndTheRedactedModelForAll(role: Role) async throws {
        try await withAPIServer { url, backend, _ in
            try Self.seeded(backend)
            let one = try await send("GET", url, "/v1/strategies/shop/payments", token: TestTokens.token(role))
            let list = try await send("GET", url, "/v1/strategies", token: TestTokens.token(role))
            #expect(one.status == 200 && list.status == 200)
            let listed = try #require(
                (try list.json()["strategies"] as? [[String: Any]])?.first { $0["name"] as? String == "payments" })
            for view in [try one.json(), listed] {
                let providers = try #require(view["providers"] as? [String: [String: Any]])
                #expect(providers["prom"]?["url"] as? String == "http://prometheus:9090/api/prom")
                #expect(
                    providers["prom"]?["headers"] as? [String: String]
                        == ["X-Api-Key": "<redacted>", "X-Env-Key": "fromEnv PROM_KEY"])
                #expect(providers["stats"]?["url"] as? String == "https://stats.example.com/q")
                #expect(providers["stats"]?["headers"] as? [String: String] == ["X-File-Key": "fromFile /var/run/secrets/stats"])
                let hooks = try #require(view["notifications"] as? [[String: Any]])
                #expect(hooks.first?["webhook"] as? String == "https://hooks.slack.com")
                #expect(hooks.first?["on"] as? [String] == ["RolledBack"])
                #expect((view["source"] as? String == Self.source) == role.includes(.release), "\(role)")
            }
            if !role.includes(.release) {
                for secret in Self.secrets {
                    #expect(!one.text.contains(secret), "\(role) saw \(secret)")
                    #expect(!list.text.contains(secret), "\(role) saw \(secret)")
                }
            }
        }
    }
}
