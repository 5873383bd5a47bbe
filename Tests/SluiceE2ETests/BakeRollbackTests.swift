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
        let directory = try makeTemporaryDirectory("sluice-bake")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (bluePort, greenPort) = (try freePort(), try freePort())
        let blue = try await DemoAppProcess(port: bluePort, version: "v1", directory: directory)
        var green = try await DemoAppProcess(port: greenPort, version: "v2", directory: directory)
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
        let serve = try await ServeProcess(directory: directory)
        defer { serve.managed.stop() }

        var (yaml, _) = try demoStrategy(
            blue: blue.dial, green: green.dial, caddyAdmin: caddy.adminURL, prometheus: prometheus.address,
            interval: "2s", hold: "4s")
        yaml += "  bake:\n    duration: 60s\n"
        let path = directory + "/demo.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let applied = try await serve.cli(["apply", "-f", path])
        try #require(applied.status == 0, "sluice apply: \(applied.stdout)\(applied.stderr)")

        let load = try LoadProcess(url: caddy.proxyURL, rate: 100, seconds: 300, directory: directory)
        defer { load.managed.stop() }
        try await waitUntil("v1 answers through Caddy", timeout: .seconds(20)) { load.traffic().lastSeen("v1") != nil }
        let http = try CurlClient()
        let weights: () async throws -> [String: Int] = { try await caddyWeights(caddy.adminURL, id: "demo", http) }

        async let waited = serve.cli(
            ["rollout", "start", "demo", "--version", "v2", "--wait", "--timeout", "170s"], timeout: .seconds(200))
        try await waitUntil("v2 to bake", timeout: .seconds(120), interval: .milliseconds(500)) {
            try await serve.events("demo").contains { $0.type == .bakeStarted }
        }
        // Baking: all traffic on v2's pool, read back from Caddy; `sluice status` shows the bake and its time left.
        #expect(try await weights() == [blue.dial: 0, green.dial: 1])
        let status = try await serve.cli(["status", "demo"])
        #expect(status.stdout.contains("Baking") && status.stdout.contains("bake "), "\(status.stdout)")

        // v2 breaks while baking.
        green.managed.stop()
        green = try await DemoAppProcess(port: greenPort, version: "v2", errorRate: 0.5, directory: directory)
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
        #expect(try await weights() == [blue.dial: 1, green.dial: 0])
        let rolledBack = try #require(events.last { $0.type == .rolledBack }).time.millisecondsSinceEpoch
        try await waitUntil("v1 to answer through Caddy after the rollback", timeout: .seconds(20)) {
            (load.traffic().lastSeen("v1") ?? 0) > rolledBack
        }
        let rollout = try await serve.cli(["status", "demo", "-o", "json"])
        #expect(rollout.stdout.contains("RolledBack"), "\(rollout.stdout)")
    }
}

/// The weight of each upstream of Caddy's handler `id`, as its admin API returns the handler.
func caddyWeights(_ admin: String, id: String, _ http: any HTTPClient) async throws -> [String: Int] {
    let response = try await http.execute(HTTPRequest(url: admin + "/id/\(id)", timeout: .seconds(5)))
    guard response.status == 200, let handler = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
    else { throw SupportError("Caddy admin /id/\(id): \(response.status)") }
    let dials = (handler["upstreams"] as? [[String: Any]] ?? []).compactMap { $0["dial"] as? String }
    let policy = (handler["load_balancing"] as? [String: Any])?["selection_policy"] as? [String: Any]
    let weights = (policy?["weights"] as? [Any] ?? []).map { ($0 as? NSNumber)?.intValue ?? 0 }
    var result: [String: Int] = [:]
    for (index, dial) in dials.enumerated() { result[dial] = index < weights.count ? weights[index] : 0 }
    return result
}
