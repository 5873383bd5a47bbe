import Foundation
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing

/// `spec.bake` end to end, every part real: strategies/demo.yaml with a 60 s bake, two demo apps behind a real
/// Caddy, a real Prometheus scraping them, load through Caddy and the `sluice` binary. v2 is promoted and bakes
/// with all traffic; then v2 starts failing half its requests (restarted on its port with --error-rate 0.5), the
/// bake's error-rate check breaches, the pools swap back, and Caddy's weights are read back from its admin API:
/// v1's pool has the traffic again. `rollout start --wait` waited through the bake and exits 1.
@Suite struct BakeRollbackTests {
    @Test func aVersionThatBreaksWhileBakingIsRolledBack() async throws {
        let world = try await DemoWorld("sluice-bake", hold: "4s", rate: 100) { $0 + "  bake:\n    duration: 60s\n" }
        defer { world.stop() }
        let (blue, green, serve) = (world.blue, world.green, world.serve)

        async let waited = serve.cli(
            ["rollout", "start", "demo", "--version", "v2", "--wait", "--timeout", "170s"], timeout: .seconds(200))
        try await waitUntil("v2 to bake", timeout: .seconds(120), interval: .milliseconds(500)) {
            try await serve.events("demo").contains { $0.type == .bakeStarted }
        }
        // Baking: all traffic on v2's pool, read back from Caddy; `sluice status` shows the bake and its time left.
        #expect(try await world.weights() == [blue.dial: 0, green.dial: 1])
        let status = try await serve.cli(["status", "demo"])
        #expect(status.stdout.contains("Baking") && status.stdout.contains("bake "), "\(status.stdout)")

        // v2 breaks while baking.
        _ = try await world.restart(green, version: "v2", errorRate: 0.5)
        let result = try await waited
        let events = try await serve.events("demo")
        let types = events.map(\.type.rawValue)
        #expect(result.status == 1, "--wait exited \(result.status): \(result.stdout)\(result.stderr)\n\(types)")
        #expect(result.stderr.contains("rolled back"), "\(result.stderr)")
        #expect(
            isSubsequence(
                ["Promoting", "StablePromoted", "BakeStarted", "CheckBreached", "RollbackStarted", "RolledBack"],
                of: types), "\(types)")
        #expect(!types.contains("Promoted"), "\(types)")
        let rollback = try #require(events.first { $0.type == .rollbackStarted })
        #expect(rollback.data["from"] == .string("Baking"))
        #expect(rollback.data["poolsSwappedBack"] == .bool(true))

        // Caddy sends everything to v1's pool again, and the load sees v1 answer after the rollback.
        #expect(try await world.weights() == [blue.dial: 1, green.dial: 0])
        let rolledBack = try #require(events.last { $0.type == .rolledBack }).time.millisecondsSinceEpoch
        try await waitUntil("v1 to answer through Caddy after the rollback", timeout: .seconds(20)) {
            (world.load.traffic().lastSeen("v1") ?? 0) > rolledBack
        }
        let rollout = try await serve.cli(["status", "demo", "-o", "json"])
        #expect(rollout.stdout.contains("RolledBack"), "\(rollout.stdout)")
    }
}
