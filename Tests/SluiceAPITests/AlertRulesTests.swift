import Foundation
import SluiceTestSupport
import Testing
import Yams

/// deploy/prometheus/: the alert rules on Sluice itself pass `promtool check rules` and their unit tests
/// (`promtool test rules`: series that must fire each alert and series that must not); the PrometheusRule is the
/// same rules; every alert carries a P0-P3 severity, an existing runbook, and is documented.
struct AlertRulesTests {
    static let directory = repositoryRoot() + "/deploy/prometheus"
    static let rulesFile = directory + "/sluice-alerts.yaml"
    static let testFile = directory + "/sluice-alerts.test.yaml"
    static let operatorFile = repositoryRoot() + "/manifests/components/prometheus-rules/prometheusrule.yaml"
    /// Series a rule reads that no Sluice serves yet, each with why. Exempt only while /metrics lacks them.
    static let awaited: [String: String] = [
        "sluice_shards_unowned": "exported once high availability (issue #19, leases per shard) lands"
    ]

    /// Debian's `prometheus` package (which `scripts/setup` installs) ships promtool.
    static func promtool() throws -> String {
        for path in ["/usr/bin/promtool", "/usr/local/bin/promtool"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw SupportError("promtool not found; install it with: apt-get install -y prometheus (scripts/setup does)")
    }

    /// Runs `executable` to its end: exit status and what it printed (stdout and stderr together).
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The alerting rules of the rule file, each as its YAML mapping.
    static func alerts() throws -> [[String: Any]] {
        let document = try Yams.load(yaml: try String(contentsOfFile: rulesFile, encoding: .utf8)) as? [String: Any]
        let groups = document?["groups"] as? [[String: Any]] ?? []
        return groups.flatMap { $0["rules"] as? [[String: Any]] ?? [] }.filter { $0["alert"] != nil }
    }

    @Test
    func promtoolChecksTheRulesAndTheirUnitTestsPass() throws {
        let promtool = try Self.promtool()
        let check = try Self.run(promtool, ["check", "rules", Self.rulesFile])
        #expect(check.status == 0, "promtool check rules:\n\(check.output)")
        let test = try Self.run(promtool, ["test", "rules", Self.testFile])
        #expect(test.status == 0, "promtool test rules:\n\(test.output)")
        #expect(test.output.contains("SUCCESS"), "\(test.output)")
    }

    /// Each alert has a case where it fires (an expected alert) and one where it must not (`exp_alerts: []`).
    @Test
    func everyAlertIsTestedFiringAndNotFiring() throws {
        let document = try Yams.load(yaml: try String(contentsOfFile: Self.testFile, encoding: .utf8)) as? [String: Any]
        var firing: Set<String> = []
        var silent: Set<String> = []
        for test in document?["tests"] as? [[String: Any]] ?? [] {
            for expectation in test["alert_rule_test"] as? [[String: Any]] ?? [] {
                guard let name = expectation["alertname"] as? String else { continue }
                if (expectation["exp_alerts"] as? [Any] ?? []).isEmpty { silent.insert(name) } else { firing.insert(name) }
            }
        }
        let names = try Self.alerts().compactMap { $0["alert"] as? String }
        #expect(names.count >= 10)
        for name in names {
            #expect(firing.contains(name), "no case in \(Self.testFile) where \(name) fires")
            #expect(silent.contains(name), "no case in \(Self.testFile) where \(name) must not fire")
        }
    }

    /// Severity P0-P3 (runbooks/README.md), a runbook that exists, a summary naming the strategy when the alert
    /// is per strategy, and a line in docs/operations.md's "Alerts".
    @Test
    func everyAlertHasSeverityRunbookSummaryAndDocs() throws {
        let root = repositoryRoot()
        let operations = try String(contentsOfFile: root + "/docs/operations.md", encoding: .utf8)
        for alert in try Self.alerts() {
            let name = alert["alert"] as? String ?? "?"
            let labels = alert["labels"] as? [String: Any] ?? [:]
            let annotations = alert["annotations"] as? [String: Any] ?? [:]
            #expect(["P0", "P1", "P2", "P3"].contains(labels["severity"] as? String), "\(name): severity")
            let runbook = annotations["runbook_url"] as? String ?? ""
            #expect(runbook.hasPrefix("runbooks/"), "\(name): runbook_url \(runbook)")
            #expect(FileManager.default.fileExists(atPath: root + "/" + runbook), "\(name): \(runbook) does not exist")
            let summary = annotations["summary"] as? String ?? ""
            #expect(!summary.isEmpty, "\(name): summary")
            let expression = alert["expr"] as? String ?? ""
            let perStrategy = ["sluice_canary_weight", "sluice_rollout_overdue_intervals", "sluice_rollbacks_total"]
                .contains { expression.contains($0) }
            #expect(!perStrategy || summary.contains("{{ $labels.strategy }}"), "\(name): summary must name the strategy")
            #expect(operations.contains("`\(name)`"), "\(name) is not documented in docs/operations.md")
        }
    }

    /// Every `sluice_` series a rule reads is one that a real `sluice serve` (the built binary, a rollout in
    /// flight behind real Caddy) serves at /metrics: a renamed metric would silence its alert.
    @Test
    func everyMetricTheRulesReadIsServed() async throws {
        let expressions = try Self.alerts().compactMap { $0["expr"] as? String }.joined(separator: "\n")
        let names = Set(
            expressions.matches(of: /sluice_[a-z_]+/).map { match in
                let name = String(match.output)
                return name.hasSuffix("_bucket") ? String(name.dropLast("_bucket".count)) : name
            })
        #expect(names.count >= 10, "\(names)")
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        try await server.applyBehind(caddy, hold: "1m")
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status == 0)
        // Per-strategy series appear once the rollout has ticked: wait for the router's read-back weight.
        var text = ""
        try await waitUntil("the rollout's series at /metrics", timeout: .seconds(20)) {
            text = try await SluiceTestSupport.run("/usr/bin/curl", ["-sf", server.url + "/metrics"]).stdout
            return text.contains(#"sluice_canary_weight{strategy="web/search"}"#)
        }
        for name in names.sorted() {
            let served = text.contains("# TYPE \(name) ")
            if let why = Self.awaited[name], !served {
                #expect(expressions.contains(name), "\(name) is awaited: \(why)")
                continue
            }
            #expect(served, "the rules read \(name), which `sluice serve`'s /metrics does not serve")
        }
    }

    /// The PrometheusRule (the Kustomize component manifests/components/prometheus-rules, rendered by real
    /// kubectl on the cluster overlay) holds the rule file's rules, and `scripts/prometheusrule --check` agrees.
    @Test
    func prometheusRuleHoldsTheSameRules() async throws {
        let rules = try Yams.load(yaml: try String(contentsOfFile: Self.rulesFile, encoding: .utf8))
        let objects = try await KustomizeTests.render("cluster+prometheus-rules")
        let object = try #require(KustomizeTests.find(objects, "PrometheusRule", "sluice"), "the component renders it")
        #expect(object["apiVersion"] as? String == "monitoring.coreos.com/v1")
        #expect((object["metadata"] as? [String: Any])?["namespace"] as? String == "sluice")
        func canonical(_ value: Any?) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: value ?? [:], options: [.sortedKeys]), as: UTF8.self)
        }
        #expect(try canonical(object["spec"]) == canonical(rules))
        let check = try Self.run("/bin/bash", [repositoryRoot() + "/scripts/prometheusrule", "--check"])
        #expect(check.status == 0, "\(check.output)")
    }
}
