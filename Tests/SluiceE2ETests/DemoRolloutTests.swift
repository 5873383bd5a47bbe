import Foundation
import SluiceCore
import SluiceDemo
import SluiceHTTP
import SluiceTestSupport
import Testing

/// scripts/demo's flow as a test, every part real and every part its own process: two `sluice-demo-app`
/// processes behind a real Caddy, a real Prometheus scraping them every
/// 500 ms, `sluice-demo-app load`
/// through Caddy, and the `sluice` binary: `sluice serve` (SQLite store), `sluice apply` of
/// strategies/demo.yaml (its ports replaced, a faster clock), `sluice rollout start --wait` for v2 (exit 0,
/// Succeeded) and for v3 with 10 % errors (exit 1, rolled back on its own), `sluice events -o json`.
@Suite struct DemoRolloutTests {
    static let interval = 2
    static let rate = 200

    @Test func rolloutSucceedsThenABadVersionIsRolledBack() async throws {
        let world = try await DemoWorld("sluice-e2e", interval: "\(Self.interval)s", hold: "4s", rate: Self.rate)
        defer { world.stop() }
        let (green, prometheus, caddy, serve, load, strategy) = (
            world.green, world.prometheus, world.caddy, world.serve, world.load, world.strategy
        )
        var stopped: [(name: String, managed: ManagedProcess)] = []
        let http = try CurlClient()

        // v2: every stage, then Succeeded; `--wait` exits 0.
        let v2 = try await serve.cli(
            ["rollout", "start", "demo", "--version", "v2", "--wait", "--timeout", "150s"], timeout: .seconds(180))
        let v2Diagnosis = v2.status == 0 ? "" : await world.diagnosis()
        try #require(v2.status == 0, "rollout of v2 exited \(v2.status): \(v2.stdout)\(v2.stderr)\n\(v2Diagnosis)")
        #expect(v2.stdout.contains("succeeded"), "\(v2.stdout)")

        // The pools swapped: blue (was v1) is the canary pool now. It runs v3, failing 10 % of requests.
        stopped.append(("app v1", world.blue.managed))
        let blue = try await world.restart(world.blue, version: "v3", errorRate: 0.1)
        let v3 = try await serve.cli(
            ["rollout", "start", "demo", "--version", "v3", "--wait", "--timeout", "120s"], timeout: .seconds(150))
        let v3Diagnosis = v3.status == 1 ? "" : await world.diagnosis()
        #expect(v3.status == 1, "rollout of v3 exited \(v3.status): \(v3.stdout)\(v3.stderr)\n\(v3Diagnosis)")
        #expect(v3.stderr.contains("rolled back"), "\(v3.stderr)")
        // Traffic keeps flowing a moment longer, so "no v3 answer after the rollback" is evidence.
        let returnedAt = unixMilliseconds()
        try await waitUntil("answers after the rollback", timeout: .seconds(20)) {
            (load.traffic().samples.last?.milliseconds ?? 0) > returnedAt + 1000
        }
        load.managed.stop()
        stopped.append(("sluice-demo-app load", load.managed))

        // The event log, in order, as `sluice events -o json` prints it.
        let events = try await serve.events("demo")
        let rollouts = events.filter { $0.type == .rolloutStarted }.map(\.rollout)
        try #require(rollouts.count == 2, "two rollouts: \(events.map(\.type.rawValue))")
        let v2Types = events.filter { $0.rollout == rollouts[0] }.map(\.type.rawValue)
        let v3Types = events.filter { $0.rollout == rollouts[1] }.map(\.type.rawValue)
        #expect(
            isSubsequence(
                [
                    "RolloutStarted", "CanaryDeployed", "StageStarted", "TrafficShifted", "StageCompleted",
                    "StageStarted", "TrafficShifted", "StageCompleted", "StageStarted", "TrafficShifted", "Promoting",
                    "StablePromoted", "Promoted",
                ], of: v2Types), "v2 events: \(v2Types)")
        #expect(!v2Types.contains("CheckBreached") && !v2Types.contains("RollbackStarted"), "v2 events: \(v2Types)")
        // (A breach may come before `TrafficShifted`: the router is set before the next tick reads it back.)
        #expect(
            isSubsequence(
                ["RolloutStarted", "StageStarted", "CheckBreached", "RollbackStarted", "RolledBack"], of: v3Types),
            "v3 events: \(v3Types)")
        #expect(!v3Types.contains("Promoted"), "v3 events: \(v3Types)")
        let breach = try #require(events.first { $0.rollout == rollouts[1] && $0.type == .checkBreached })
        let checkNames = strategy.analysis.checks.map(\.name)
        #expect(
            checkNames.contains { breach.message.hasPrefix($0 + " = ") }, "the breach names its check: \(breach.message)")

        // Each v2 stage's split, counted from the demo backends' answers through Caddy, within ±3 points.
        let traffic = load.traffic()
        let report = DemoReport(events: events, traffic: traffic)
        let v2Line = try #require(report.rollouts.first { $0.id == rollouts[0] })
        #expect(v2Line.version == "v2" && v2Line.stages.map(\.weight) == [10, 50, 100], "\(report.text)")
        for stage in v2Line.stages {
            let measured = try #require(stage.measuredPercent, "no traffic measured in stage \(stage.name)")
            #expect(abs(measured - Double(stage.weight)) <= 3, "stage \(stage.name): \(measured) % measured")
            #expect(stage.answers >= Self.rate * 2, "stage \(stage.name): only \(stage.answers) answers")
        }

        // Rollback within one interval + 2 s of the breach becoming visible in Prometheus: the moment is read
        // back from Prometheus' data, the end is the last v3 answer the load saw through Caddy.
        let v3Started = try #require(events.first { $0.rollout == rollouts[1] }).time.millisecondsSinceEpoch
        let v3Ended = try #require(events.last { $0.rollout == rollouts[1] }).time.millisecondsSinceEpoch
        let visible = try #require(
            try await firstBreachVisible(
                checks: strategy.analysis.checks.filter { $0.compare == nil }, version: "v3",
                prometheus: prometheus.address, from: v3Started,
                to: v3Ended, client: http),
            "no check of v3 was ever out of bounds in Prometheus")
        let lastV3 = try #require(traffic.lastSeen("v3"), "v3 never answered through Caddy")
        let budget = Int64(Self.interval * 1000 + 2000)
        #expect(
            lastV3 - visible.milliseconds <= budget,
            "last v3 answer \(lastV3 - visible.milliseconds) ms after \(visible.check) was out of bounds in Prometheus")
        #expect(traffic.lastSeen("v1", after: v3Started) == nil, "v1 was stopped before the v3 rollout")
        // Each weight change is a Caddy config reload, which may reset a connection still queued on the old
        // listening socket; the load, as real clients do, sends such a GET again (docs/demo.md). What must not
        // happen is a request left without an answer after that: a timeout, a refused or reset retry.
        let unanswered = traffic.samples.filter { $0.status == 0 }
            .map { "\($0.milliseconds) \($0.failure ?? "-")" }
        #expect(
            unanswered.isEmpty,
            """
            requests that got no answer through Caddy (time, cause) \(unanswered) \
            (v3 started \(v3Started), load stopped after \(returnedAt))
            """)
        #expect(traffic.samples.filter { $0.status >= 500 }.allSatisfy { $0.version == "v3" }, "only v3 fails")
        print(report.text + "  breach visible in Prometheus (\(visible.check)) → last v3 answer: "
            + "\(lastV3 - visible.milliseconds) ms (budget \(budget) ms); \(traffic.retried) of "
            + "\(traffic.samples.count) requests answered after a connection retry")

        // Every process exits cleanly on SIGTERM: status 0, not killed.
        serve.managed.stop(timeout: .seconds(15))
        blue.managed.stop()
        green.managed.stop()
        prometheus.stop()
        caddy.stop()
        stopped += [("sluice serve", serve.managed), ("app v3", blue.managed), ("app v2", green.managed)]
        for (name, managed) in stopped {
            let how = managed.process.terminationReason == .exit ? "exit status" : "signal"
            #expect(
                managed.exitedCleanly, "\(name): \(how) \(managed.process.terminationStatus)\n\(managed.logTail(1000))")
        }
        #expect(prometheus.exitedCleanly, "prometheus did not exit with status 0:\n\(prometheus.logTail())")
        #expect(caddy.exitedCleanly, "caddy did not exit with status 0:\n\(caddy.logTail())")
    }
}

/// Whether `expected` appears in `actual` in order (other elements may sit between).
func isSubsequence(_ expected: [String], of actual: [String]) -> Bool {
    var remaining = expected[...]
    for element in actual where remaining.first == element { remaining = remaining.dropFirst() }
    return remaining.isEmpty
}
