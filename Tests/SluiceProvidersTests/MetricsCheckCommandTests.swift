import Foundation
import SluiceCore
import SluiceProviders
import SluiceTestSupport
import Testing

/// `sluice check` as a release engineer runs it: the built binary as a subprocess, against a real
/// Prometheus scraping the test exporter while requests flow.
@Suite struct MetricsCheckCommandTests {
    /// strategies/checkout.yaml pointed at `prometheus` with `[5s]` windows, written to a temp file.
    static func checkoutFile(prometheus address: String, extraChecks: String = "") throws -> String {
        let source = try String(contentsOfFile: repositoryRoot() + "/strategies/checkout.yaml", encoding: .utf8)
        var yaml = source.replacingOccurrences(of: "http://prometheus.monitoring:9090", with: address)
            .replacingOccurrences(of: "[1m]", with: "[5s]")
        try #require(yaml != source && yaml.contains(address))
        yaml += extraChecks
        let path = try makeTemporaryDirectory("sluice-check") + "/checkout.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    struct Row: Decodable {
        var check: String
        var query: String
        var value: Double?
        var threshold: String
        var verdict: String
        var reason: String?
    }

    func rows(_ result: CommandResult) throws -> [String: Row] {
        let rows = try JSONDecoder().decode([Row].self, from: Data(result.stdout.utf8))
        return Dictionary(uniqueKeysWithValues: rows.map { ($0.check, $0) })
    }

    @Test func exitsZeroWhenEveryCheckPassesAndOneWhenOneBreaches() async throws {
        let lab = try await MetricsLab.start(stable: true)
        defer { lab.stop() }
        let file = try Self.checkoutFile(prometheus: lab.prometheus.address)

        try await lab.withTraffic(concurrency: 4) {
            var last: CommandResult?
            try await waitUntil(
                "sluice check to pass with healthy traffic", timeout: .seconds(20), interval: .milliseconds(500)
            ) {
                last = try await runSluice(["check", file, "-o", "json"])
                return last?.status == 0
            }
            let passed = try rows(try #require(last))
            #expect(
                passed.keys.sorted() == [
                    "availability", "error-rate", "errors-vs-stable", "latency-vs-stable", "p99-latency-seconds",
                ])
            #expect(passed.values.allSatisfy { $0.verdict == "pass" && $0.value != nil })
            #expect(passed["error-rate"]?.query.contains(#"app="checkout",track="canary",code=~"5.."}[5s]"#) == true)
            #expect(passed["availability"]?.threshold == ">= 0.999")

            let table = try await runSluice(["check", file])
            #expect(table.status == 0, "\(table.stdout)\(table.stderr)")
            let lines = table.stdout.split(separator: "\n")
            #expect(lines.first?.hasPrefix("CHECK") == true && lines.first?.hasSuffix("THRESHOLD  VERDICT") == true)
            #expect(lines.count == 6 && lines.dropFirst().allSatisfy { $0.hasSuffix("pass") }, "\(table.stdout)")

            try await lab.control(errorRate: 0.2)
            try await waitUntil("sluice check to see the breach", timeout: .seconds(20), interval: .milliseconds(500)) {
                last = try await runSluice(["check", file, "-o", "json"])
                return try rows(try #require(last))["error-rate"]?.verdict == "breach"
            }
            let failing = try #require(last)
            #expect(failing.status == 1)
            let breached = try rows(failing)
            #expect(breached["availability"]?.verdict == "breach")
            #expect(breached["p99-latency-seconds"]?.verdict == "pass")
        }
    }

    @Test func noDataAndBadQueriesExitOneAndSayWhy() async throws {
        let lab = try await MetricsLab.start()
        defer { lab.stop() }
        let extra = """
                  - name: typo
                    query: sum(rate(http_requests_totl{app="{{name}}"}[5s]))
                    max: 1
                  - name: syntax
                    query: sum(rate(http_requests_total[5s]) by
                    max: 1
                  - name: unaggregated
                    query: http_requests_total{app="{{name}}"}
                    max: 1

            """
        // The extra checks go at the end of analysis.checks, before `rollback:`.
        let file = try Self.checkoutFile(prometheus: lab.prometheus.address)
        var yaml = try String(contentsOfFile: file, encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "  rollback:\n", with: extra + "  rollback:\n")
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)

        let result = try await runSluice(["check", file, "--stage", "pilot"])
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        let out = result.stdout
        #expect(out.contains("typo: no data: the query returned an empty result"), "\(out)")
        let prefix = #"no data: prometheus "prom" at \#(lab.prometheus.address): "#
        let syntax = #"bad_data: invalid parameter "query": 1:35: parse error"#
        #expect(out.contains("syntax: " + prefix + syntax), "\(out)")
        #expect(out.contains("(HTTP 400)"))
        #expect(out.contains("unaggregated: " + prefix + "the query must return one value but returned 2 series"))

        lab.prometheus.stop()
        let down = try await runSluice(["check", file, "-o", "json"])
        #expect(down.status == 1)
        let rows = try rows(down)
        #expect(rows.count == 8)
        #expect(
            rows.values.allSatisfy {
                $0.verdict == "no-data" && $0.reason?.contains("no answer (connectFailed)") == true
            })
    }

    @Test(
        arguments: [
            (["check"], 64),
            (["check", "strategies/checkout.yaml", "--stage", "7"], 64),
            (["check", "strategies/checkout.yaml", "-o", "yaml"], 64),
            (["check", "does-not-exist.yaml"], 1),
        ] as [([String], Int32)])
    func badUsageAndMissingFiles(arguments: [String], status: Int32) async throws {
        let result = try await runSluice(arguments)
        #expect(result.status == status, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(!result.stderr.isEmpty)
    }

    @Test func anInvalidStrategyExitsOneWithCompilerStyleErrors() async throws {
        let path = try makeTemporaryDirectory("sluice-check") + "/bad.yaml"
        let source = try String(contentsOfFile: repositoryRoot() + "/strategies/checkout.yaml", encoding: .utf8)
        try source.replacingOccurrences(of: "{{name}}", with: "{{nmae}}").write(
            toFile: path, atomically: true, encoding: .utf8)
        let result = try await runSluice(["check", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(path):"), "\(result.stderr)")
        #expect(result.stderr.contains("{{nmae}}"))
        #expect(result.stdout.isEmpty)
    }
}
