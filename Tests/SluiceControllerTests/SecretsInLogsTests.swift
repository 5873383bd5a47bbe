import Foundation
import InMemoryLogging
import Logging
import SluiceController
import SluiceCore
import SluiceHTTP
import SluiceProviders
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport
import Testing

/// No secret of a strategy (a webhook's path and query, user info in a URL, a provider header's value) reaches
/// a log line or an event; the real controller, store, curl and a loopback server, with fake router and workload.
@Suite struct SecretsInLogsTests {
    /// The controller on a file store with a manual clock, logging everything to memory.
    final class Harness: @unchecked Sendable {
        let clock = ManualClock()
        let logs = InMemoryLogHandler()
        let store: Store
        let controller: Controller
        let running: Task<Void, any Error>

        init(strategy: Strategy, providers: any ProviderFactory, http: any HTTPClient, options: Controller.Options)
            async throws
        {
            store = try Store(path: try makeTemporaryDirectory("sluice-secrets") + "/sluice.db")
            _ = try await store.putStrategy(strategy, now: clock.now())
            var logger = Logger(label: "secrets") { [logs] _ in logs }
            logger.logLevel = .trace
            let controller = Controller(
                store: store, providers: providers, clock: clock, http: http, logger: logger, options: options)
            self.controller = controller
            running = Task { try await controller.run() }
        }

        func settle() async throws {
            try await waitUntil("the controller to settle", timeout: .seconds(20), interval: .milliseconds(2)) {
                let snapshot = self.controller.snapshot()
                return snapshot.running && snapshot.runningEffectBatches == 0
                    && self.clock.sleepers == snapshot.drivenRollouts
            }
        }

        /// Every log line with its metadata, and every event as JSON, in one text to search.
        func everythingSaid() async throws -> String {
            let lines = logs.entries.map { "\($0.level) \($0.message) \($0.metadata)" }
            let events = try await store.events().map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
            return (lines + events).joined(separator: "\n")
        }

        func stop() async {
            running.cancel()
            _ = await running.result
        }
    }

    static var options: Controller.Options {
        var options = Controller.Options()
        options.observeTimeout = .seconds(5)
        options.effectTimeout = .seconds(5)
        options.notificationAttempts = 2
        options.notificationBackoff = .milliseconds(5)
        options.notificationTimeout = .seconds(3)
        return options
    }

    @Test func aWebhookThatFailsIsLoggedWithItsOriginOnly() async throws {
        let port = try freePort()  // nothing listens: curl's "connection refused"
        let webhook = "http://hook-user:hook-pass@127.0.0.1:\(port)/services/T000/B000/XXXXSECRET?token=query-secret"
        let strategy = Fixtures.strategy(notifications: [NotificationTarget(webhook: webhook, on: ["RolloutStarted"])])
        let harness = try await Harness(
            strategy: strategy, providers: FakeProviderFactory(), http: try CurlClient(), options: Self.options)
        _ = try await harness.controller.startRollout(strategy: strategy.key, version: "v2", actor: "ci", supersede: false)
        try await waitUntil("the notification to be given up", timeout: .seconds(20)) {
            harness.controller.snapshot().notificationsFailed == 1
        }
        await harness.stop()

        let failure = try #require(harness.logs.entries.first { "\($0.message)".contains("webhook failed") })
        #expect(failure.metadata["webhook.url"] == "http://127.0.0.1:\(port)")
        #expect("\(failure.metadata["error"] ?? "")".hasPrefix("connectFailed"))
        let said = try await harness.everythingSaid()
        for secret in ["hook-user", "hook-pass", "/services", "XXXXSECRET", "query-secret"] {
            #expect(!said.contains(secret), "\(secret) in:\n\(said)")
        }
    }

    /// Real metric providers from the registry; the router and workload of a `FakeProviderFactory`.
    struct RealMetrics: ProviderFactory {
        let registry: MetricProviderRegistry
        let fakes = FakeProviderFactory()
        func providers(for strategy: Strategy, rollout: Rollout) throws -> RolloutProviders {
            var providers = try fakes.providers(for: strategy, rollout: rollout)
            providers.metrics = try registry.makeProviders(for: strategy.analysis)
            return providers
        }
    }

    @Test func headerValuesFromTheEnvironmentAndFilesReachTheProviderButNoLogOrEvent() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let file = try makeTemporaryDirectory("sluice-secrets") + "/file-key"
        try "file-secret-4711\n".write(toFile: file, atomically: true, encoding: .utf8)
        var strategy = Fixtures.strategy()
        // The first answer is a 401, so a failed sample is recorded too; the URL's user info is a secret as well.
        let url = "http://url-user:url-secret@127.0.0.1:\(server.port)/record?key=controller&fail=1&sig=query-secret"
        strategy.analysis.providers = [
            "prom": .web(
                WebConfig(
                    url: url, jsonPath: "value",
                    headers: ["X-Api-Key": .fromEnv("PROM_KEY"), "X-File-Key": .fromFile(file), "X-Written": "written-secret"]))
        ]
        strategy.analysis.checks = [Check(name: "error-rate", provider: "prom", query: "q", max: 5)]
        let registry = MetricProviderRegistry(client: client, environment: ["PROM_KEY": "env-secret-1234"])
        let harness = try await Harness(
            strategy: strategy, providers: RealMetrics(registry: registry), http: client, options: Self.options)
        let rollout = try await harness.controller.startRollout(
            strategy: strategy.key, version: "v2", actor: "ci", supersede: false)
        try await harness.settle()
        for _ in 0..<4 {
            harness.clock.advance(by: .seconds(10))
            try await harness.settle()
        }
        await harness.stop()

        let response = try await client.execute(HTTPRequest(url: server.baseURL + "/recorded?key=controller"))
        let seen = try JSONDecoder().decode([String: String].self, from: response.body)
        #expect(seen["x-api-key"] == "env-secret-1234")
        #expect(seen["x-file-key"] == "file-secret-4711")
        #expect(seen["x-written"] == "written-secret")

        let samples = try await harness.store.samples(rollout: rollout.id, check: "error-rate")
        #expect(samples.contains { $0.verdict == .noData && ($0.reason ?? "").contains("not authorised") })
        #expect(samples.contains { $0.value == 1 })
        let said = try await harness.everythingSaid() + samples.map { "\($0)" }.joined(separator: "\n")
        for secret in ["env-secret-1234", "file-secret-4711", "written-secret", "url-user", "url-secret", "query-secret"] {
            #expect(!said.contains(secret), "\(secret) in:\n\(said)")
        }
    }
}
