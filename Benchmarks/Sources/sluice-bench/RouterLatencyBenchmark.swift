import ArgumentParser
import Foundation
import SluiceCore
import SluiceHTTP
import SluiceProviders
import SluiceTestSupport

/// `sluice-bench router-latency`: from the call that applies Sluice's weight decision (`CaddyRouter.setCanaryWeight`)
/// to the first request a real Caddy routes by the new weights (issue #7, point 6).
struct RouterLatencyBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router-latency",
        abstract: "Decision → first request routed by the new weights, through a real Caddy on loopback.",
        discussion: """
            Starts Caddy (.tools/venv/bin/caddy, installed by scripts/setup) with a weighted_round_robin \
            reverse_proxy over two loopback backends in this process (SwiftNIO) answering "stable" and \
            "canary", so a Caddy config reload never restarts a backend. Each change flips the \
            canary weight between 100 and 0 through the real CaddyRouter (admin API: GET with Etag, PATCH with \
            If-Match). While that call runs, a prober sends requests through the proxy back to back; the change \
            is routed at the first response from the backend only the new weights send traffic to.
            """
    )

    @Option(help: "Weight changes per run.")
    var changes = 100

    @Option(help: "Runs, each with a fresh Caddy; the summary shows the median over runs.")
    var runs = 3

    @Option(help: "Pause between changes, in milliseconds (Caddy settles; no traffic in the pause).")
    var gapMs = 50

    func run() async throws {
        guard changes > 0, runs > 0, gapMs >= 0 else { throw ValidationError("--changes and --runs must be > 0") }
        print("sluice-bench router-latency: \(runs) run(s) × \(changes) changes (canary weight 0 ↔ 100), "
            + "\(gapMs) ms between changes; \(ProcessInfo.processInfo.activeProcessorCount) cores; "
            + "load average \(loadAverage())")
        var results: [RouterLatencyRun] = []
        for index in 1...runs {
            let result = try await measureRun()
            results.append(result)
            for failure in Set(result.failures).sorted() { print("  failed probe: \(failure)") }
            print(String(format: "run %d  routed p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms | set call p50 %6.2f ms  "
                + "p99 %6.2f ms | probes per change p50 %.0f max %.0f, failed %d | load %@",
                index, result.routed.p50, result.routed.p99, result.routed.max, result.setCall.p50, result.setCall.p99,
                result.probes.p50, result.probes.max, result.failures.count, loadAverage() as NSString))
        }
        print("")
        print("| run | decision → routed p50 ms | p99 ms | max ms | setCanaryWeight call p50 ms | p99 ms "
            + "| failed probes |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for (index, result) in results.enumerated() {
            print(String(format: "| %d | %.2f | %.2f | %.2f | %.2f | %.2f | %d |", index + 1, result.routed.p50,
                result.routed.p99, result.routed.max, result.setCall.p50, result.setCall.p99, result.failures.count))
        }
        print(String(format: "| median | %.2f | %.2f | %.2f | %.2f | %.2f | |",
            median(results.map(\.routed.p50)), median(results.map(\.routed.p99)), median(results.map(\.routed.max)),
            median(results.map(\.setCall.p50)), median(results.map(\.setCall.p99))))
    }

    /// One run: a fresh Caddy, `changes` changes, the latency of each.
    private func measureRun() async throws -> RouterLatencyRun {
        let stable = try BenchServer(threads: 1, body: "stable")
        defer { try? stable.shutdown() }
        let canary = try BenchServer(threads: 1, body: "canary")
        defer { try? canary.shutdown() }
        let dials = ["127.0.0.1:\(stable.port)", "127.0.0.1:\(canary.port)"]
        let caddy = try await CaddyServer.start(backendBodies: []) { _ in
            CaddyServer.weightedProxy(id: "bench", dials: dials, weights: [1, 0])
        }
        defer { caddy.stop() }
        let client = try CurlClient()
        let router = try CaddyRouter(
            adminURL: caddy.adminURL, handlerID: "bench", pools: Pools(stable: [dials[0]], canary: [dials[1]]),
            client: client)
        let probe = HTTPRequest(url: caddy.proxyURL, timeout: .seconds(2), retry: .none)
        // Warm-up: the connection to Caddy is open and the route answers from stable.
        for _ in 0..<20 { _ = try await client.execute(probe) }

        let clock = ContinuousClock()
        var routed: [Double] = []
        var setCall: [Double] = []
        var probes: [Double] = []
        var failures: [String] = []
        for change in 0..<changes {
            let weight = change % 2 == 0 ? 100 : 0
            let expected = weight == 100 ? "canary" : "stable"
            let start = clock.now
            async let applied: Duration = {
                try await router.setCanaryWeight(weight)
                return clock.now - start
            }()
            var sent = 0
            var routedAfter: Duration?
            while routedAfter == nil {
                sent += 1
                // A failed probe is recorded, and probing goes on.
                let response: HTTPResponse?
                do {
                    response = try await client.execute(probe)
                    if response?.status != 200 { failures.append("HTTP \(response?.status ?? 0)") }
                } catch {
                    response = nil
                    failures.append("\(error)")
                }
                if let response, response.status == 200, String(decoding: response.body, as: UTF8.self) == expected {
                    routedAfter = clock.now - start
                } else if clock.now - start > .seconds(5) {
                    throw BenchError("change \(change): weight \(weight) not routed after 5 s\n\(caddy.logTail())")
                }
            }
            setCall.append(try await applied.seconds * 1000)
            routed.append(routedAfter!.seconds * 1000)
            probes.append(Double(sent))
            // Outside the timing: the router reads back what it set.
            let readBack = try await router.canaryWeight()
            guard readBack == weight else { throw BenchError("change \(change): set \(weight), read \(readBack)") }
            try await Task.sleep(for: .milliseconds(gapMs))  // pacing between changes, not a wait for a condition
        }
        return RouterLatencyRun(
            routed: Percentiles(routed), setCall: Percentiles(setCall), probes: Percentiles(probes),
            failures: failures)
    }
}

/// The figures of one `router-latency` run.
struct RouterLatencyRun {
    var routed: Percentiles
    var setCall: Percentiles
    var probes: Percentiles
    /// What each failed probe got (an error, a 502 while Caddy swaps its config); probing went on after it.
    var failures: [String]
}

/// p50, p99 and max of a sample, nearest-rank (p99 of 100 values is the 99th smallest).
struct Percentiles {
    var p50: Double
    var p99: Double
    var max: Double

    init(_ values: [Double]) {
        let sorted = values.sorted()
        func rank(_ quantile: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = Int((quantile * Double(sorted.count)).rounded(.up)) - 1
            return sorted[Swift.min(Swift.max(index, 0), sorted.count - 1)]
        }
        p50 = rank(0.5)
        p99 = rank(0.99)
        max = sorted.last ?? 0
    }
}

/// The 1-minute load average, as `uptime` shows it.
func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}
