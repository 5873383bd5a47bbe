import Foundation
import Logging
import SluiceController
import SluiceCore
import SluiceDemo
import SluiceHTTP
import SluiceStore
import SluiceTestSupport
import Testing

/// The demo's flow end to end with every part real: two demo app processes behind a real Caddy, a real
/// Prometheus scraping them every second, load through Caddy, and the controller on a SQLite store with
/// the real Prometheus provider and Caddy router. v2 goes through every stage to Succeeded; v3, with 10 %
/// errors, is rolled back on its own.
@Suite struct DemoRolloutTests {
    static let interval = 2
    static let rate = 200

    @Test func rolloutSucceedsThenABadVersionIsRolledBack() async throws {
        let directory = try makeTemporaryDirectory("sluice-e2e")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (bluePort, greenPort) = (try freePort(), try freePort())
        var blue = try await DemoAppProcess(port: bluePort, version: "v1", directory: directory)
        let green = try await DemoAppProcess(port: greenPort, version: "v2", directory: directory)
        var stopped: [(String, Bool)] = []
        defer {
            blue.managed.stop()
            green.managed.stop()
        }
        let prometheus = try await PrometheusServer.start(targets: [blue.dial, green.dial], job: "demo")
        defer { prometheus.stop() }
        let caddy = try await CaddyServer.start(backendBodies: []) { _ in
            CaddyServer.weightedProxy(id: "demo", dials: [blue.dial, green.dial], weights: [1, 0])
        }
        defer { caddy.stop() }

        let (yaml, strategy) = try demoStrategy(
            blue: blue.dial, green: green.dial, caddyAdmin: caddy.adminURL, prometheus: prometheus.address,
            interval: "\(Self.interval)s", hold: "4s")
        let store = try Store(path: directory + "/sluice.db")
        _ = try await store.putStrategy(strategy, source: yaml, now: SystemClock().now())
        let http = try CurlClient()
        let controller = Controller(
            store: store, providers: RegistryProviderFactory(http: http), http: nil,
            logger: Logger(label: "e2e", factory: { _ in SwiftLogNoOpLogHandler() }))
        let controllerTask = Task { try await controller.run() }
        defer { controllerTask.cancel() }

        let traffic = TrafficLog()
        let load = try LoadGenerator(url: caddy.proxyURL, rate: Self.rate, duration: .seconds(150))
        let loadClient = try CurlClient()
        let loadTask = Task { await load.run(client: loadClient) { traffic.append($0) } }
        defer { loadTask.cancel() }
        try await waitUntil("v1 answers through Caddy", timeout: .seconds(10)) { traffic.lastSeen("v1") != nil }

        // v2: every stage, then Succeeded.
        let v2 = try await controller.startRollout(strategy: strategy.key, version: "v2", actor: "e2e", supersede: false)
        let diagnose: () async -> String = {
            let query = prometheus.address + "/api/v1/query?query=http_requests_total"
            let series = (try? await http.execute(HTTPRequest(url: query))).map { String(decoding: $0.body, as: UTF8.self) }
            return "answers by version at Caddy: \(traffic.counts(from: 0, to: .max))\nPrometheus: \(series ?? "-")"
        }
        try await waitForFinal(store, v2.id, timeout: .seconds(90), diagnose: diagnose)
        #expect(try await store.rollout(v2.id)?.phase == .succeeded)

        // The pools swapped: blue (was v1) is the canary pool now. It runs v3, failing 10 % of requests.
        blue.managed.stop()
        stopped.append(("app v1", blue.managed.exitedCleanly))
        blue = try await DemoAppProcess(port: bluePort, version: "v3", errorRate: 0.1, directory: directory)
        let watch = PrometheusWatch(
            address: prometheus.address,
            query: try #require(strategy.analysis.checks.first { $0.name == "error-rate" }?.query)
                .replacingOccurrences(of: "{{version}}", with: "v3"),
            threshold: 0.01)
        let watchTask = Task { await watch.run(client: http) }
        defer { watchTask.cancel() }
        let v3 = try await controller.startRollout(strategy: strategy.key, version: "v3", actor: "e2e", supersede: false)
        try await waitForFinal(store, v3.id, timeout: .seconds(60), diagnose: diagnose)
        #expect(try await store.rollout(v3.id)?.phase == .rolledBack)
        // Traffic keeps flowing a moment longer, so "no v3 answer after the rollback" is evidence.
        let rolledBackAt = unixMilliseconds()
        try await waitUntil("answers after the rollback", timeout: .seconds(10)) {
            (traffic.samples.last?.milliseconds ?? 0) > rolledBackAt + 1000
        }
        loadTask.cancel()
        _ = await loadTask.value
        watchTask.cancel()
        _ = await watchTask.value

        // The event log, in order.
        let events = try await store.events(EventQuery(limit: 10_000))
        let v2Types = events.filter { $0.rollout == v2.id }.map(\.type.rawValue)
        let v3Types = events.filter { $0.rollout == v3.id }.map(\.type.rawValue)
        #expect(
            isSubsequence(
                [
                    "RolloutStarted", "CanaryDeployed", "StageStarted", "TrafficShifted", "StageCompleted",
                    "StageStarted", "TrafficShifted", "StageCompleted", "StageStarted", "TrafficShifted", "Promoting",
                    "StablePromoted", "Promoted",
                ], of: v2Types), "v2 events: \(v2Types)")
        #expect(!v2Types.contains("CheckBreached") && !v2Types.contains("RollbackStarted"), "v2 events: \(v2Types)")
        #expect(
            isSubsequence(["RolloutStarted", "StageStarted", "CheckBreached", "RollbackStarted", "RolledBack"], of: v3Types),
            "v3 events: \(v3Types)")
        #expect(!v3Types.contains("Promoted"), "v3 events: \(v3Types)")
        let breaches = events.filter { $0.rollout == v3.id && $0.type == .checkBreached }
        #expect(breaches.contains { $0.data["check"] == .string("error-rate") || $0.message.contains("error-rate") },
                "breaches: \(breaches.map(\.message))")

        // Each stage's split, counted at the backends' answers through Caddy, within ±3 points.
        let report = DemoReport(events: events, traffic: traffic)
        let v2Line = try #require(report.rollouts.first { $0.id == v2.id })
        #expect(v2Line.stages.map(\.weight) == [10, 50, 100])
        for stage in v2Line.stages {
            let measured = try #require(stage.measuredPercent, "no traffic measured in stage \(stage.name)")
            #expect(abs(measured - Double(stage.weight)) <= 3, "stage \(stage.name): \(measured) % measured")
            #expect(stage.answers >= Self.rate * 2, "stage \(stage.name): only \(stage.answers) answers")
        }

        // Rollback within one interval + 2 s of the breach being visible in Prometheus, measured at Caddy.
        let visible = try #require(watch.firstAbove, "the v3 error rate never showed in Prometheus")
        let lastV3 = try #require(traffic.lastSeen("v3"), "v3 never answered")
        let budget = Int64(Self.interval * 1000 + 2000)
        #expect(lastV3 - visible <= budget, "last v3 answer \(lastV3 - visible) ms after the breach was visible")
        #expect(traffic.samples.filter { $0.status == 0 }.isEmpty, "requests that got no answer through Caddy")
        let v3Errors = traffic.samples.filter { $0.status >= 500 }
        #expect(v3Errors.allSatisfy { $0.version == "v3" }, "only v3 fails")
        print(report.text)

        // Every process exits cleanly.
        controllerTask.cancel()
        try await controllerTask.value
        blue.managed.stop()
        green.managed.stop()
        prometheus.stop()
        caddy.stop()
        stopped += [
            ("app v3", blue.managed.exitedCleanly), ("app v2", green.managed.exitedCleanly),
            ("prometheus", prometheus.exitedCleanly), ("caddy", caddy.exitedCleanly),
        ]
        for (name, clean) in stopped { #expect(clean, "\(name) did not exit with status 0") }
    }

    /// Waits until the rollout is in a final phase.
    func waitForFinal(
        _ store: Store, _ id: String, timeout: Duration, diagnose: () async -> String = { "" }
    ) async throws {
        do {
            try await waitUntil("rollout \(id) to finish", timeout: timeout, interval: .milliseconds(100)) {
                guard let phase = try await store.rollout(id)?.phase else { return false }
                return [.succeeded, .rolledBack, .failed].contains(phase)
            }
        } catch {
            let events = try await store.events(EventQuery(rollout: id, limit: 10_000))
            throw SupportError(
                "\(error); its events:\n" + events.map { "\($0.type) \($0.message)" }.joined(separator: "\n") + "\n"
                    + (await diagnose()))
        }
    }
}

/// Whether `expected` appears in `actual` in order (other elements may sit between).
func isSubsequence(_ expected: [String], of actual: [String]) -> Bool {
    var remaining = expected[...]
    for element in actual where remaining.first == element { remaining = remaining.dropFirst() }
    return remaining.isEmpty
}
