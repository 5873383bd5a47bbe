import Foundation
import SluiceCore
import SluiceTestSupport
import Testing

/// `sluice replay` as a release engineer runs it: the built binary against a real Prometheus whose history was
/// written with `promtool tsdb create-blocks-from openmetrics`, three histories of known values side by side.
@Suite struct ReplayCommandTests {
    /// 2026-12-01T14:00:00Z, where every rollout of these tests starts.
    static let start: Int64 = 1_796_133_600

    /// Counters every 10 s from 13:59:00 to 14:09:00 per history (label `history`): the canary serves 1,000 requests
    /// each 10 s, stable 9,000 with 45 errors. `promote`: the canary never fails. `breach`: from 14:05:00 the canary
    /// fails 23 of its 1,000. `gap`: nothing was scraped from 14:02:00 to 14:03:50 (a Prometheus outage).
    static var history: String {
        var requests: [String] = []
        var errors: [String] = []
        for name in ["promote", "breach", "gap"] {
            for (track, perTick, errorsPerTick) in [("canary", 1000, 0), ("stable", 9000, 45)] {
                var (total, failed) = (0, 0)
                for tick in 0...60 {
                    let time = start - 60 + Int64(tick) * 10
                    total += perTick
                    failed += errorsPerTick
                    if name == "breach", track == "canary", time >= start + 300 { failed += 23 }
                    if name == "gap", time >= start + 120, time < start + 240 { continue }
                    let labels = "{history=\"\(name)\",track=\"\(track)\"}"
                    requests.append("app_requests_total\(labels) \(total) \(time)")
                    errors.append("app_errors_total\(labels) \(failed) \(time)")
                }
            }
        }
        return (["# TYPE app_requests counter"] + requests + ["# TYPE app_errors counter"] + errors + ["# EOF"])
            .joined(separator: "\n") + "\n"
    }

    /// Three strategies named after the histories: three stages held 3 minutes each, a threshold on the error rate
    /// and a comparison with stable, 3 no-data samples in a row pause.
    static func strategies(prometheus: String) throws -> String {
        var yaml = ""
        for name in ["promote", "breach", "gap"] {
            yaml += """
                apiVersion: sluice.dev/v1
                kind: Strategy
                metadata: {name: \(name)}
                spec:
                  target: {deployment: \(name)}
                  traffic: {gatewayAPI: {httpRoute: \(name), stableService: \(name), canaryService: \(name)-canary}}
                  stages:
                    - {name: canary, weight: 10, hold: 3m}
                    - {name: half, weight: 50, hold: 3m}
                    - {name: full, weight: 100}
                  analysis:
                    interval: 10s
                    failureLimit: 1
                    noDataLimit: 3
                    onNoData: pause
                    providers:
                      prom: {prometheus: {address: "\(prometheus)", timeout: 2s}}
                    checks:
                      - name: error-rate
                        query: sum(rate(app_errors_total{history="{{name}}",track="canary"}[30s])) / sum(rate(app_requests_total{history="{{name}}",track="canary"}[30s]))
                        max: 0.01
                      - name: errors-vs-stable
                        compare:
                          kind: rate
                          canary:
                            errors: 'sum(increase(app_errors_total{history="{{name}}",track="canary"}[{{interval}}]))'
                            requests: 'sum(increase(app_requests_total{history="{{name}}",track="canary"}[{{interval}}]))'
                          baseline:
                            errors: 'sum(increase(app_errors_total{history="{{name}}",track="stable"}[{{interval}}]))'
                            requests: 'sum(increase(app_requests_total{history="{{name}}",track="stable"}[{{interval}}]))'
                          maxIncrease: 20%
                ---

                """
        }
        let path = try makeTemporaryDirectory("sluice-replay") + "/history.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    struct Report: Decodable {
        struct Outcome: Decodable {
            var verdict: String
            var at: String?
            var reason: String?
            var summary: String
        }
        struct Line: Decodable {
            var time: String
            var type: String
            var stageName: String?
            var data: [String: JSONValue]
        }
        var strategy: String
        var ticks: Int
        var outcome: Outcome
        var events: [Line]
    }

    static let window = ["--from", "2026-12-01T14:00:00Z", "--to", "2026-12-01T14:09:00Z"]

    func replay(_ name: String, _ file: String, _ extra: [String] = []) async throws -> CommandResult {
        try await runSluice(["replay", file, "--strategy", name] + Self.window + extra, timeout: .seconds(60))
    }

    @Test func aHealthyHistoryPromotesStageByStage() async throws {
        let prometheus = try await PrometheusServer.start(history: Self.history)
        defer { prometheus.stop() }
        let file = try Self.strategies(prometheus: prometheus.address)

        let result = try await replay("promote", file, ["-o", "json"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        // Stage 1 is confirmed at 14:00:10 and holds 18 passing intervals (3m): it ends at 14:03:10; stage 2 is
        // entered at 14:03:20, confirmed at 14:03:30, ends at 14:06:30; the last stage holds one interval.
        #expect(report.outcome.verdict == "promoted")
        #expect(report.outcome.at == "2026-12-01T14:07:00.000Z")
        let completed = report.events.filter { $0.type == "StageCompleted" }
            .map { "\($0.time) \($0.stageName ?? "")" }
        #expect(
            completed == [
                "2026-12-01T14:03:10.000Z canary", "2026-12-01T14:06:30.000Z half", "2026-12-01T14:07:00.000Z full",
            ])
        #expect(Array(report.events.map(\.type).suffix(3)) == ["Promoting", "StablePromoted", "Promoted"])
        #expect(!report.events.contains { $0.type == "CheckBreached" || $0.type == "CheckNoData" })

        let table = try await replay("promote", file)
        #expect(table.status == 0)
        #expect(table.stdout.contains("would have promoted at 14:07:00: every stage held and every check passed"))
        #expect(table.stdout.contains("14:03:10  1/3 canary  10%     StageCompleted"), "\(table.stdout)")
    }

    @Test func aBreachRollsBackAtTheTickThatSeesItAndSaysWhy() async throws {
        let prometheus = try await PrometheusServer.start(history: Self.history)
        defer { prometheus.stop() }
        let file = try Self.strategies(prometheus: prometheus.address)

        let result = try await replay("breach", file)
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        // At 14:05:00 the [30s] window (14:04:30 to 14:05:00, both ends) holds 23 errors in 3,000 requests:
        // 0.0077 passes; at 14:05:10, 46 in 3,000: 0.0153, the breach, in stage 2 at 50 %.
        #expect(
            result.stdout.contains("would have rolled back at 14:05:10: error-rate 0.01533 > 0.01"), "\(result.stdout)")
        #expect(result.stdout.contains("14:05:10  2/3 half    50%     CheckBreached"), "\(result.stdout)")
        #expect(result.stdout.contains("14:05:20  2/3 half    0%      RolledBack"), "\(result.stdout)")

        let json = try await replay("breach", file, ["-o", "json"])
        let report = try JSONDecoder().decode(Report.self, from: Data(json.stdout.utf8))
        #expect(report.outcome.verdict == "rolledBack")
        #expect(report.outcome.at == "2026-12-01T14:05:10.000Z")
        #expect(report.outcome.reason == "error-rate 0.01533 > 0.01")
        let breach = try #require(report.events.first { $0.type == "CheckBreached" })
        #expect(breach.data["check"] == .string("error-rate") && breach.data["max"] == .number(0.01))
    }

    @Test func aGapIsNoDataAndPausesAtTheNoDataLimit() async throws {
        let prometheus = try await PrometheusServer.start(history: Self.history)
        defer { prometheus.stop() }
        let file = try Self.strategies(prometheus: prometheus.address)

        let result = try await replay("gap", file, ["-o", "json"])
        #expect(result.status == 4, "\(result.stdout)\(result.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        // The last samples before the gap are at 14:01:50: the comparison's [10s] increase has no data from 14:02:00,
        // the [30s] rate from 14:02:20, the third sample without data in a row of the comparison.
        let noData = report.events.filter { $0.type == "CheckNoData" }.map { "\($0.time) \($0.data["check"] ?? .null)" }
        #expect(
            noData == [
                "2026-12-01T14:02:00.000Z string(\"errors-vs-stable\")",
                "2026-12-01T14:02:20.000Z string(\"error-rate\")",
            ], "\(noData)")
        #expect(report.outcome.verdict == "paused")
        #expect(report.outcome.at == "2026-12-01T14:02:20.000Z")
        let reason = report.outcome.reason ?? ""
        #expect(reason.contains("errors-vs-stable had no data 3 consecutive time(s) (noDataLimit)"), "\(reason)")
        // Data comes back, the checks recover, and a pause for no data waits for a human: no stage ends after it.
        #expect(report.events.contains { $0.type == "CheckRecovered" })
        #expect(!report.events.contains { $0.type == "StageCompleted" || $0.type == "RollbackStarted" })
    }

    @Test func unreachablePrometheusBadTimesAndInvalidStrategiesAreClearErrors() async throws {
        let port = try freePort()
        let file = try Self.strategies(prometheus: "http://127.0.0.1:\(port)")

        let down = try await replay("promote", file)
        #expect(down.status == 3)
        let unreachable = "prometheus \"prom\" at http://127.0.0.1:\(port): no answer (connectFailed)"
        #expect(down.stderr.contains(unreachable), "\(down.stderr)")
        #expect(down.stdout.isEmpty)

        let promote = ["replay", file, "--strategy", "promote"]
        let backwards = try await runSluice(promote + ["--from", "2026-12-01T14:09:00Z", "--to", "2026-12-01T14:00:00Z"])
        #expect(backwards.status == 64)
        #expect(backwards.stderr.contains("--from 2026-12-01T14:09:00.000Z is not before --to 2026-12-01T14:00:00.000Z"))

        let garbled = try await runSluice(promote + ["--from", "yesterday", "--to", "now"])
        #expect(garbled.status == 64)
        #expect(garbled.stderr.contains("--from yesterday: not a time"), "\(garbled.stderr)")

        let future = try await runSluice(promote + ["--from", "now-1h", "--to", "2099-01-01T00:00:00Z"])
        #expect(future.status == 64)
        #expect(future.stderr.contains("is in the future"), "\(future.stderr)")

        let swapped = try await runSluice(promote + Self.window + ["--swap-pools"])
        #expect(swapped.status == 64)
        #expect(swapped.stderr.contains("--swap-pools: default/promote has no upstreams pools to swap"), "\(swapped.stderr)")

        let several = try await runSluice(["replay", file] + Self.window)
        #expect(several.status == 64)
        #expect(
            several.stderr.contains(
                "holds 3 strategies (default/promote, default/breach, default/gap); pick one with --strategy"))

        let broken = try makeTemporaryDirectory("sluice-replay") + "/broken.yaml"
        try String(contentsOfFile: file, encoding: .utf8).replacingOccurrences(of: "max: 0.01", with: "maxx: 0.01")
            .write(toFile: broken, atomically: true, encoding: .utf8)
        let invalid = try await runSluice(["replay", broken, "--strategy", "promote"] + Self.window)
        #expect(invalid.status == 1)
        let unknown = #"broken.yaml:21:9: error: spec.analysis.checks[0].maxx: unknown key "maxx"; did you mean "max"?"#
        #expect(invalid.stderr.contains(unknown), "\(invalid.stderr)")
    }
}
