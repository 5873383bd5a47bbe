import Foundation
import SluiceCore
import SluiceDemo
import SluiceHTTP
import SluiceTestSupport
import Testing

/// The labelled scenario suite of #23.5, end to end: the demo's world (two `sluice-demo-app` pools, a real
/// Prometheus scraping every 500 ms, a real Caddy with passive health checks on its handler, load through Caddy
/// and the `sluice` binary), strategies/demo.yaml at a 2 s interval and 4 s holds, run once with its threshold
/// checks only and once with its comparison checks only. Each scenario gives the canary (v2) a fault and
/// records the verdict, the time from the fault's onset to Caddy's canary weight read back at 0, and the time
/// from the fault first showing in Prometheus' data to that weight 0 (docs/judge.md "The labelled scenario
/// suite").
///
/// The crash runs on every `scripts/test` (about 25 s; a good canary promoted through the same world is
/// DemoRolloutTests'); the whole table (18 rollouts a round, about 10 minutes) with
/// `Benchmarks/scripts/judgement [ROUNDS]`, which sets SLUICE_JUDGEMENT_SUITE (and SLUICE_JUDGEMENT_ROUNDS).
@Suite(.serialized) struct JudgementScenarioTests {
    /// A canary whose process is killed at the 50 % stage, with threshold checks only: its series vanish (no-data
    /// for the thresholds), and Caddy's passive health checks take it for down: the rollout fails on the router's
    /// view within two intervals and a little, never pauses, never promotes.
    @Test func aCanaryThatCrashesAtHalfIsFailedOnTheRoutersView() async throws {
        let run = try await JudgementScenario.crash.run(.thresholds)
        #expect(run.verdict == .failed, "\(run)")
        let seconds = try #require(run.secondsToZero, "\(run)")
        // Two looks 2 s apart, the tick's phase and the write's read-back: within three intervals.
        #expect(seconds <= 3 * Double(JudgementScenario.interval), "\(run)")
        #expect(run.events.contains { $0.contains("the router takes it for down on 2 looks in a row") }, "\(run)")
        #expect(!run.events.contains { $0.hasPrefix("Paused") }, "\(run)")
    }

    /// Every scenario with each kind of check, `SLUICE_JUDGEMENT_ROUNDS` times (default 1); prints the table
    /// and writes it to `$SLUICE_TEST_OUTPUT/judgement.md` (or `.build/test-output/judgement.md`).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SLUICE_JUDGEMENT_SUITE"] != nil))
    func theLabelledSuite() async throws {
        let rounds = max(1, Int(ProcessInfo.processInfo.environment["SLUICE_JUDGEMENT_ROUNDS"] ?? "") ?? 1)
        var runs: [String: [CheckStyle: [ScenarioRun]]] = [:]
        // SLUICE_JUDGEMENT_ONLY=TEXT runs only the scenarios whose name contains TEXT.
        let only = ProcessInfo.processInfo.environment["SLUICE_JUDGEMENT_ONLY"] ?? ""
        let scenarios = JudgementScenario.all.filter { only.isEmpty || $0.name.contains(only) }
        for round in 1...rounds {
            for scenario in scenarios {
                for style in CheckStyle.allCases {
                    let run = try await scenario.run(style)
                    print("judgement: round \(round): \(scenario.name) / \(style.rawValue): \(run)")
                    runs[scenario.name, default: [:]][style, default: []].append(run)
                }
            }
        }
        let table = JudgementScenario.table(scenarios.map { ($0, runs[$0.name] ?? [:]) }, rounds: rounds)
        print(table)
        let output = (ProcessInfo.processInfo.environment["SLUICE_TEST_OUTPUT"] ?? repositoryRoot() + "/.build/test-output")
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try table.write(toFile: output + "/judgement.md", atomically: true, encoding: .utf8)
        for scenario in scenarios {
            for (style, styleRuns) in runs[scenario.name] ?? [:] {
                for run in styleRuns {
                    if !scenario.good {
                        #expect(run.verdict != .promoted, "\(scenario.name) / \(style): \(run)")
                    } else if style == .comparisons || scenario.noise == 0 {
                        #expect(run.verdict == .promoted, "\(scenario.name) / \(style): \(run)")
                    }
                    // The thresholds' `availability` (min 99.9 %) rolls back a canary with stable's own 0.3 % of
                    // errors: right by its definition, wrong by the label, and the reason comparisons exist. The
                    // table shows it (docs/judge.md); it is not the judgement failing.
                }
            }
        }
    }
}

/// Which of the demo strategy's checks a run keeps.
enum CheckStyle: String, Sendable, CaseIterable, Hashable {
    case thresholds, comparisons

    /// The check names of strategies/demo.yaml this style keeps.
    var checks: Set<String> {
        switch self {
        case .thresholds: ["error-rate", "p99-latency-seconds", "availability"]
        case .comparisons: ["errors-vs-stable", "latency-vs-stable"]
        }
    }
}

/// How a run ended.
enum ScenarioVerdict: String, Sendable {
    case promoted, rolledBack = "rolled back", failed, paused, undecided
}

/// What one run saw.
struct ScenarioRun: Sendable, CustomStringConvertible {
    var verdict: ScenarioVerdict
    /// From the fault's onset to the first read of Caddy's canary weight at 0; nil when it did not happen.
    var secondsToZero: Double?
    /// From the first of Prometheus' samples that carries the fault (a canary 5xx, a canary request slower than
    /// 250 ms, the canary target's `up` at 0) to that weight 0; nil without a fault in Prometheus or a weight 0.
    var secondsFromVisible: Double?
    /// From the fault's onset to the rollout's `Paused` event; nil when it did not pause.
    var secondsToPause: Double?
    /// Answers the load got through Caddy with a 5xx or none at all, from the fault's onset to weight 0 (or to
    /// the end of the run).
    var failedAnswers: Int
    /// `TYPE message` of the rollout's events, in order.
    var events: [String]

    var description: String {
        let zero = secondsToZero.map { String(format: "%.1f s to weight 0", $0) } ?? "weight not 0"
        let visible = secondsFromVisible.map { String(format: " (%.1f s after it showed in Prometheus)", $0) } ?? ""
        let pause = secondsToPause.map { String(format: ", paused %.1f s after the onset", $0) } ?? ""
        return "\(verdict.rawValue), \(zero)\(visible)\(pause), \(failedAnswers) failed answers; "
            + "events: \(events.joined(separator: " | "))"
    }
}

/// One labelled scenario: what is wrong with the canary, and when it starts.
struct JudgementScenario: Sendable {
    enum Fault: Sendable {
        case none
        /// Errors or latency from the start.
        case errors(Double), latency(Int)
        /// Errors from the moment Caddy reads back 50 % to the canary.
        case errorsAtHalf(Double)
        /// The canary's process killed when Caddy reads back 50 % to it.
        case crashAtHalf
        /// Prometheus killed a second after the canary first has traffic.
        case prometheusDown
    }

    static let interval = 2

    var name: String
    var good: Bool
    var fault: Fault
    /// An error rate on both pools (the stable one too).
    var noise = 0.0

    static let crash = JudgementScenario(name: "canary crash at 50 %", good: false, fault: .crashAtHalf)

    static let all: [JudgementScenario] = [
        JudgementScenario(name: "clean", good: true, fault: .none),
        JudgementScenario(name: "0.3 % errors on both pools", good: true, fault: .none, noise: 0.003),
        JudgementScenario(name: "40 ms slower", good: true, fault: .latency(40)),
        JudgementScenario(name: "10 % errors", good: false, fault: .errors(0.1)),
        JudgementScenario(name: "2 % errors", good: false, fault: .errors(0.02)),
        JudgementScenario(name: "2 % errors from the 50 % stage", good: false, fault: .errorsAtHalf(0.02)),
        JudgementScenario(name: "300 ms slower", good: false, fault: .latency(300)),
        crash,
        JudgementScenario(name: "Prometheus down", good: false, fault: .prometheusDown),
    ]

    /// Runs the scenario once with `style`'s checks.
    func run(_ style: CheckStyle) async throws -> ScenarioRun {
        let world = try await DemoWorld(
            "sluice-judgement", interval: "\(Self.interval)s", hold: "4s", rate: 200,
            edit: { Self.keeping(style.checks, in: $0) })
        defer { world.stop() }
        let http = try CurlClient()
        let canary = world.green
        // The recommended Caddy setup (docs/judge.md "The router's view"): passive health checks on the handler.
        let patched = try await http.execute(HTTPRequest(
            method: "POST", url: world.caddy.adminURL + "/id/demo/health_checks",
            headers: [("Content-Type", "application/json")],
            body: Data(#"{"passive": {"fail_duration": "30s", "max_fails": 3}}"#.utf8), timeout: .seconds(5)))
        guard patched.status == 200 else { throw SupportError("Caddy health_checks: \(patched.status)") }
        // A Prometheus that has just started scrapes nothing for its first ~5 s (its discovery manager sends the
        // first targets after a 5 s throttle), and a rollout started at once would be judged on no data at all
        // for that long. A real Prometheus has been scraping for ages: start when it scrapes both pools.
        try await waitUntil("Prometheus to scrape both pools", timeout: .seconds(30), interval: .milliseconds(200)) {
            try await scrapesBothPools(world, http)
        }
        if noise > 0 {
            for app in [world.blue, world.green] { try await control(app, #"{"errorRate": \#(noise)}"#, http) }
        }
        switch fault {
        case .errors(let rate): try await control(canary, #"{"errorRate": \#(rate)}"#, http)
        case .latency(let ms): try await control(canary, #"{"latencyMs": \#(ms)}"#, http)
        case .none, .errorsAtHalf, .crashAtHalf, .prometheusDown: break
        }

        // Watches Caddy's weights every 100 ms: starts the fault when its moment comes, notes onset and weight 0.
        let watch = Task { () -> (onset: Int64?, zero: Int64?) in
            var onset: Int64?
            var zero: Int64?
            var hadTraffic = false
            while !Task.isCancelled {
                if let weights = try? await world.weights() {
                    let total = weights.values.reduce(0, +)
                    let share = total > 0 ? 100 * (weights[canary.dial] ?? 0) / total : 0
                    let now = unixMilliseconds()
                    if share > 0, !hadTraffic {
                        hadTraffic = true
                        switch fault {
                        case .errors, .latency: onset = now
                        case .prometheusDown:
                            try? await Task.sleep(for: .seconds(1))
                            world.prometheus.stop()
                            onset = unixMilliseconds()
                        case .none, .errorsAtHalf, .crashAtHalf: break
                        }
                    }
                    if share >= 50, onset == nil {
                        switch fault {
                        case .errorsAtHalf(let rate):
                            try? await control(canary, #"{"errorRate": \#(rate)}"#, http)
                            onset = unixMilliseconds()
                        case .crashAtHalf:
                            canary.managed.stop(signal: SIGKILL)
                            onset = unixMilliseconds()
                        default: break
                        }
                    }
                    if let onset, share == 0, zero == nil { zero = max(now, onset) }
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return (onset, zero)
        }
        let result = try await world.serve.cli(
            ["rollout", "start", "demo", "--version", "v2", "--wait", "--timeout", "40s"], timeout: .seconds(60))
        // A moment more, so that a weight of 0 written at the end is read.
        try await Task.sleep(for: .milliseconds(400))
        watch.cancel()
        let (onset, zero) = await watch.value
        let events = (try? await world.serve.events("demo")) ?? []
        // Each event with its time from the onset (from the first event without one), for the diagnosis.
        let origin = onset ?? events.first?.time.millisecondsSinceEpoch ?? 0
        let lines = events.map {
            "\($0.type.rawValue) \($0.message)"
                + String(format: " (%+.1f s)", Double($0.time.millisecondsSinceEpoch - origin) / 1000)
        }
        let verdict: ScenarioVerdict
        switch result.status {
        case 0: verdict = .promoted
        case 1: verdict = lines.contains { $0.hasPrefix("Failed") } ? .failed : .rolledBack
        default: verdict = lines.last { !$0.hasPrefix("Check") }?.hasPrefix("Paused") == true ? .paused : .undecided
        }
        var visible: Int64?
        if let onset, let zero { visible = try await faultVisible(world, from: onset, to: zero, http) }
        let paused = events.first { $0.type == .paused }?.time.millisecondsSinceEpoch
        let failed = world.load.traffic().samples.filter {
            $0.milliseconds >= onset ?? .max && $0.milliseconds <= zero ?? .max && ($0.status == 0 || $0.status >= 500)
        }.count
        return ScenarioRun(
            verdict: verdict, secondsToZero: onset.flatMap { onset in zero.map { Double($0 - onset) / 1000 } },
            secondsFromVisible: visible.flatMap { visible in zero.map { Double($0 - visible) / 1000 } },
            secondsToPause: onset.flatMap { onset in paused.map { Double(max($0, onset) - onset) / 1000 } },
            failedAnswers: onset == nil ? 0 : failed, events: lines)
    }

    /// When the fault first showed in Prometheus' data between `from` and `to` (Unix milliseconds), read back
    /// from Prometheus itself: a range query every 100 ms evaluates at t only the samples scraped by t, so the
    /// first t whose value differs from the one at `from` is the scrape that brought the fault. nil when the
    /// fault never shows there (Prometheus down, or no fault).
    private func faultVisible(_ world: DemoWorld, from: Int64, to: Int64, _ http: CurlClient) async throws -> Int64? {
        let version = #"app="demo",version="v2""#
        let query: String
        let shows: (_ first: Double, _ value: Double) -> Bool
        switch fault {
        case .errors, .errorsAtHalf:
            query = #"sum(http_requests_total{\#(version),code=~"5.."}) or vector(0)"#
            shows = { $1 > $0 }
        case .latency:
            // Requests slower than 250 ms: the latency comparison's canary bound and above the p99 threshold.
            query = #"(sum(http_request_duration_seconds_count{\#(version)})"#
                + #" - sum(http_request_duration_seconds_bucket{\#(version),le="0.25"})) or vector(0)"#
            shows = { $1 > $0 }
        case .crashAtHalf:
            query = #"up{job="demo",instance="\#(world.green.dial)"}"#
            shows = { $1 == 0 }
        case .none, .prometheusDown: return nil
        }
        var components = URLComponents(string: world.prometheus.address + "/api/v1/query_range")!
        components.queryItems = [
            URLQueryItem(name: "query", value: query),
            URLQueryItem(name: "start", value: String(format: "%.3f", Double(from) / 1000)),
            URLQueryItem(name: "end", value: String(format: "%.3f", Double(to) / 1000)),
            URLQueryItem(name: "step", value: "0.1"),
        ]
        let response = try await http.execute(HTTPRequest(url: components.url!.absoluteString, timeout: .seconds(10)))
        guard response.status == 200,
            let object = try JSONSerialization.jsonObject(with: response.body) as? [String: Any],
            let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]]
        else { throw SupportError("Prometheus query_range \(query): \(response.status)") }
        let values: [(Int64, Double)] = (result.first?["values"] as? [Any] ?? []).compactMap { item in
            guard let pair = item as? [Any], pair.count == 2, let time = pair[0] as? Double,
                let text = pair[1] as? String, let value = Double(text)
            else { return nil }
            return (Int64((time * 1000).rounded()), value)
        }
        guard let first = values.first?.1 else { return nil }
        return values.first { shows(first, $0.1) }?.0
    }

    /// Whether Prometheus has scraped both pools (`up` is 1 for each).
    private func scrapesBothPools(_ world: DemoWorld, _ http: CurlClient) async throws -> Bool {
        var components = URLComponents(string: world.prometheus.address + "/api/v1/query")!
        components.queryItems = [URLQueryItem(name: "query", value: #"count(up{job="demo"} == 1)"#)]
        let response = try await http.execute(HTTPRequest(url: components.url!.absoluteString, timeout: .seconds(5)))
        guard response.status == 200,
            let object = try JSONSerialization.jsonObject(with: response.body) as? [String: Any],
            let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
            let value = result.first?["value"] as? [Any], value.count == 2, let text = value[1] as? String
        else { return false }
        return Int(text) == 2
    }

    /// POST /control on a demo app.
    private func control(_ app: DemoAppProcess, _ json: String, _ http: CurlClient) async throws {
        let response = try await http.execute(HTTPRequest(
            method: "POST", url: "http://\(app.dial)/control", headers: [("Content-Type", "application/json")],
            body: Data(json.utf8), timeout: .seconds(5)))
        guard response.status == 200 else { throw SupportError("POST /control \(json) on \(app.dial): \(response.status)") }
    }

    /// strategies/demo.yaml with only the checks named in `names` (each check is a `      - name:` entry).
    static func keeping(_ names: Set<String>, in yaml: String) -> String {
        guard let start = yaml.range(of: "    checks:\n"), let end = yaml.range(of: "  rollback:") else { return yaml }
        let body = yaml[start.upperBound..<end.lowerBound]
        var kept = ""
        var keep = true
        for line in body.split(separator: "\n") {
            if line.hasPrefix("      - name: ") {
                keep = names.contains(String(line.dropFirst("      - name: ".count)))
            } else if line.hasPrefix("      #") {
                // A comment between entries belongs to the next one: dropped with the entries it explains.
                continue
            }
            if keep { kept += line + "\n" }
        }
        return String(yaml[..<start.upperBound]) + kept + String(yaml[end.lowerBound...])
    }

    /// The Markdown table of docs/judge.md: per scenario and kind of check, the verdicts of every round, and
    /// the medians (with the range over rounds) of onset to weight 0 and of visible in Prometheus to weight 0.
    static func table(_ rows: [(JudgementScenario, [CheckStyle: [ScenarioRun]])], rounds: Int) -> String {
        func median(_ values: [Double]) -> Double? {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return nil }
            let middle = sorted.count / 2
            return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        }
        func seconds(_ values: [Double]) -> String {
            guard let middle = median(values) else { return "-" }
            let range = values.count > 1 ? String(format: " (%.1f-%.1f)", values.min()!, values.max()!) : ""
            return String(format: "%.1f s", middle) + range
        }
        func cells(_ runs: [ScenarioRun]) -> String {
            guard !runs.isEmpty else { return "- | - | - | -" }
            var verdicts: [String] = []
            for verdict in [ScenarioVerdict.promoted, .rolledBack, .failed, .paused, .undecided] {
                let count = runs.filter { $0.verdict == verdict }.count
                guard count > 0 else { continue }
                let pause = verdict == .paused ? seconds(runs.compactMap(\.secondsToPause)) + " after onset" : ""
                verdicts.append((rounds > 1 ? "\(verdict.rawValue) \(count)/\(runs.count)" : verdict.rawValue)
                    + (pause.isEmpty ? "" : " (\(pause))"))
            }
            let failed = median(runs.map { Double($0.failedAnswers) }).map { String(format: "%.0f", $0) } ?? "-"
            return verdicts.joined(separator: ", ") + " | \(seconds(runs.compactMap(\.secondsToZero))) | "
                + "\(seconds(runs.compactMap(\.secondsFromVisible))) | \(failed)"
        }
        var text = "| scenario | label | thresholds | onset → 0 | shown → 0 | failed answers "
            + "| comparisons | onset → 0 | shown → 0 | failed answers |\n"
            + "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        for (scenario, runs) in rows {
            text += "| \(scenario.name) | \(scenario.good ? "good" : "bad") | \(cells(runs[.thresholds] ?? [])) | "
                + "\(cells(runs[.comparisons] ?? [])) |\n"
        }
        text += "\n"
        for style in CheckStyle.allCases {
            let bad = rows.filter { !$0.0.good }.flatMap { $0.1[style] ?? [] }
            let onset = median(bad.compactMap(\.secondsToZero)).map { String(format: "%.1f s", $0) } ?? "-"
            let shown = median(bad.compactMap(\.secondsFromVisible)).map { String(format: "%.1f s", $0) } ?? "-"
            text += "\(style.rawValue): median over the bad runs that reached weight 0: onset → 0 \(onset) "
                + "(\(bad.compactMap(\.secondsToZero).count) of \(bad.count) runs), shown in Prometheus → 0 \(shown) "
                + "(\(bad.compactMap(\.secondsFromVisible).count) runs)\n"
        }
        return text
    }
}
