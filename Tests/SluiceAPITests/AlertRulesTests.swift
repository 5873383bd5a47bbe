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
    static let awaited: [String: String] = [:]

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

    /// The runbook an alert links names the alert with its severity, so on-call arriving from a page knows it is
    /// in the right place and how urgent it is.
    @Test
    func eachAlertsRunbookNamesItWithItsSeverity() throws {
        for alert in try Self.alerts() {
            let name = alert["alert"] as? String ?? "?"
            let severity = (alert["labels"] as? [String: Any])?["severity"] as? String ?? "?"
            let runbook = (alert["annotations"] as? [String: Any])?["runbook_url"] as? String ?? ""
            let text = (try? String(contentsOfFile: repositoryRoot() + "/" + runbook, encoding: .utf8)) ?? ""
            #expect(
                text.contains("`\(name)` (\(severity)"), "\(runbook) does not name `\(name)` (\(severity)")
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
        let (caddy, server) = try await ServeProcess.rolloutBehindCaddy(version: "v2")
        defer {
            server.stop()
            caddy.stop()
        }
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

    /// The rules on a real Prometheus scraping a real `sluice serve` (as job `sluice`): every rule evaluates
    /// without error on the series Sluice really exports, and a real rollback, the strategy's first (its
    /// `sluice_rollbacks_total` series appears at 1, where increase() sees no rise), fires SluiceRolledBack.
    @Test
    func theRulesEvaluateOnARealPrometheusAndARealRollbackFires() async throws {
        let (caddy, server) = try await ServeProcess.rolloutBehindCaddy(version: "v2")
        defer {
            server.stop()
            caddy.stop()
        }
        let prometheus = try await PrometheusServer.start(
            targets: ["127.0.0.1:\(server.port)"], job: "sluice", ruleFiles: [Self.rulesFile])
        defer { prometheus.stop() }
        func get(_ path: String) async throws -> [String: Any] {
            let body = try await SluiceTestSupport.run("/usr/bin/curl", ["-sf", prometheus.address + path]).stdout
            return (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
        var rules: [[String: Any]] = []
        try await waitUntil("every rule evaluated on Sluice's series", timeout: .seconds(30)) {
            let groups = (try await get("/api/v1/rules")["data"] as? [String: Any])?["groups"] as? [[String: Any]] ?? []
            rules = groups.flatMap { $0["rules"] as? [[String: Any]] ?? [] }
            let up = try await get("/api/v1/query?query=up%7Bjob%3D%22sluice%22%7D")
            let scraped = ((up["data"] as? [String: Any])?["result"] as? [Any])?.isEmpty == false
            return scraped && !rules.isEmpty && rules.allSatisfy { ($0["lastEvaluation"] as? String)?.hasPrefix("0001") == false }
        }
        #expect(rules.count == (try Self.alerts()).count)
        for rule in rules {
            #expect(rule["health"] as? String == "ok", "\(rule["name"] ?? "?"): \(rule["lastError"] ?? "")")
        }

        let rollback = try await runSluice(["rollback", "web/search", "--reason", "INC-1"] + server.tokenArgs(.oncall))
        #expect(rollback.status == 0, "\(rollback.stderr)")
        try await waitUntil("SluiceRolledBack to fire", timeout: .seconds(30)) {
            let alerts = (try await get("/api/v1/alerts")["data"] as? [String: Any])?["alerts"] as? [[String: Any]] ?? []
            return alerts.contains { alert in
                let labels = alert["labels"] as? [String: Any] ?? [:]
                return labels["alertname"] as? String == "SluiceRolledBack" && labels["strategy"] as? String == "web/search"
                    && labels["trigger"] as? String == "manual" && alert["state"] as? String == "firing"
            }
        }
    }

    /// The P0 situation for real: Caddy's admin API refuses the rollback's write (a proxy answering 500), so the
    /// router keeps reading back 10 % while Sluice wants 0 %. On a real Prometheus scraping the real server, both
    /// P0 alerts fire for web/search; once the router takes the weight, SluiceRollbackNotConfirmed resolves. The
    /// rules' `for:` are cut to 2 s in the copy Prometheus loads (the promtool cases test the durations; this
    /// tests the expressions on the series Sluice really exports).
    @Test
    func theP0AlertsFireWhileTheRouterRefusesARollbackAndResolveOnceItTakesIt() async throws {
        let world = try await RouterTruthTests.World.start()
        defer { world.stop() }
        let server = world.server
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status == 0)
        try await waitUntil("the router to confirm 10%", timeout: .seconds(30)) {
            try await world.status()?.router?.weight == 10
        }
        let rules = try await RulesOnPrometheus.start(scraping: server)
        defer { rules.stop() }

        try world.proxy.failWrites(true)
        _ = try await runSluice(["rollback", "web/search", "--reason", "INC-7", "--no-wait"] + server.tokenArgs(.oncall))
        try await rules.waitUntilFiring(["SluiceRollbackNotConfirmed web/search", "SluiceRollingBackTooLong"], server: server)
        var alerts = try await rules.firing()
        #expect(!alerts.contains("SluiceDown") && !alerts.contains("SluiceNotReady"), "\(alerts)")

        try world.proxy.failWrites(false)
        try await waitUntil("SluiceRollbackNotConfirmed to resolve", timeout: .seconds(40)) {
            alerts = try await rules.firing()
            return !alerts.contains("SluiceRollbackNotConfirmed web/search") && !alerts.contains("SluiceRollingBackTooLong")
        }
        #expect(try await world.status()?.phase == "RolledBack")
    }

    /// A router that refuses the first stage's weight (Caddy's admin API answering 500 to writes) while the
    /// checks pass: the weight is never confirmed and the rollout goes 10 intervals past its due step.
    @Test
    func aStageWeightTheRouterRefusesFiresSluiceRolloutStuck() async throws {
        let world = try await RouterTruthTests.World.start()
        defer { world.stop() }
        try world.proxy.failWrites(true)
        let server = world.server
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status == 0)
        let rules = try await RulesOnPrometheus.start(scraping: server)
        defer { rules.stop() }
        try await rules.waitUntilFiring(["SluiceRolloutStuck web/search"], server: server)
    }

    /// A router and a metrics provider where nothing listens: every call fails (SluiceProviderNoData, for each),
    /// and the rollout pauses on no-data, which waits for a human: not SluiceRolloutStuck.
    @Test
    func providersThatAnswerNothingFireSluiceProviderNoData() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let path = server.directory + "/search.yaml"
        try ServeProcess.strategy(weight: 10).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", path] + server.tokenArgs(.release)).status == 0)
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status == 0)
        let rules = try await RulesOnPrometheus.start(scraping: server)
        defer { rules.stop() }
        try await rules.waitUntilFiring(["SluiceProviderNoData caddy", "SluiceProviderNoData slo"], server: server)
        try await waitUntil("Prometheus to see the rollout paused on no-data", timeout: .seconds(30)) {
            try await rules.seriesCount(#"sluice_rollouts{phase="Paused"} == 1"#) == 1
        }
        #expect(try await rules.seriesCount("sluice_rollout_overdue_intervals") == 0)
        #expect(!(try await rules.firing()).contains("SluiceRolloutStuck web/search"))
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

/// A real Prometheus scraping `sluice serve` as job `sluice` every second, evaluating a copy of the shipped rules
/// whose `for:` are cut to 2 s (the promtool cases test the durations; this tests the expressions on the series
/// Sluice really exports).
struct RulesOnPrometheus {
    let prometheus: PrometheusServer
    let directory: String

    static func start(scraping server: ServeProcess) async throws -> RulesOnPrometheus {
        let directory = try makeTemporaryDirectory("sluice-alert-rules")
        let rules = try String(contentsOfFile: AlertRulesTests.rulesFile, encoding: .utf8)
            .replacing(/(?m)^(\s+for: )\S+$/) { "\($0.output.1)2s" }
        guard !rules.contains("for: 1m"), rules.contains("for: 2s") else { throw SupportError("for: not cut:\n\(rules)") }
        try rules.write(toFile: directory + "/rules.yaml", atomically: true, encoding: .utf8)
        let prometheus = try await PrometheusServer.start(
            targets: ["127.0.0.1:\(server.port)"], job: "sluice", ruleFiles: [directory + "/rules.yaml"])
        return RulesOnPrometheus(prometheus: prometheus, directory: directory)
    }

    func stop() {
        prometheus.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The alerts firing now, each as `NAME STRATEGY` (or `NAME PROVIDER`) when it has one, else `NAME`.
    func firing() async throws -> [String] {
        let body = try await run("/usr/bin/curl", ["-sf", prometheus.address + "/api/v1/alerts"]).stdout
        let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        let alerts = (object?["data"] as? [String: Any])?["alerts"] as? [[String: Any]] ?? []
        return alerts.filter { $0["state"] as? String == "firing" }.compactMap { alert in
            let labels = alert["labels"] as? [String: Any] ?? [:]
            let name = labels["alertname"] as? String ?? "?"
            return (labels["strategy"] ?? labels["provider"]).map { "\(name) \($0)" } ?? name
        }
    }

    /// How many series the instant query `promql` answers now.
    func seriesCount(_ promql: String) async throws -> Int {
        let body = try await run(
            "/usr/bin/curl", ["-sf", prometheus.address + "/api/v1/query", "--data-urlencode", "query=" + promql]).stdout
        let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        return ((object?["data"] as? [String: Any])?["result"] as? [Any])?.count ?? 0
    }

    /// Waits until every one of `expected` fires; on a timeout, fails with what fires and the series behind it.
    func waitUntilFiring(_ expected: [String], server: ServeProcess, timeout: Duration = .seconds(60)) async throws {
        var alerts: [String] = []
        do {
            try await waitUntil("\(expected) to fire", timeout: timeout) {
                alerts = try await firing()
                return expected.allSatisfy(alerts.contains)
            }
        } catch {
            let metrics = try await run("/usr/bin/curl", ["-sf", server.url + "/metrics"]).stdout.split(separator: "\n")
                .filter { !$0.hasPrefix("#") && ($0.contains("overdue") || $0.contains("provider_requests") || $0.contains("canary_weight")) }
            Issue.record("\(error); firing: \(alerts)\n\(metrics.joined(separator: "\n"))")
        }
    }
}
