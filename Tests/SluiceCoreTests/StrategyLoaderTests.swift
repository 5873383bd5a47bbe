import Foundation
import SluiceCore
import SluiceTestSupport
import Testing

@Suite struct StrategyLoaderTests {
    @Test func baseStrategyBuildsTheModelWithDefaults() throws {
        let strategy = try StrategyLoader.loadOne(yaml: baseStrategy, file: "t.yaml")
        #expect(strategy.key == StrategyKey(namespace: "shop", name: "checkout"))
        #expect(strategy.labels == [:])
        #expect(strategy.target == .deployment(name: "checkout", container: nil))
        #expect(strategy.traffic == .gatewayAPI(httpRoute: "checkout", stableService: "checkout", canaryService: "checkout-canary"))
        #expect(strategy.stages == [
            Stage(name: "canary", weight: 5, hold: .seconds(1800)),
            Stage(name: "pilot", weight: 25, hold: .seconds(3600)),
            // The last stage may omit hold: one interval.
            Stage(name: "full", weight: 100, hold: .seconds(10)),
        ])
        #expect(strategy.analysis.interval == .seconds(10))
        #expect(strategy.analysis.failureLimit == 1)
        #expect(strategy.analysis.noDataLimit == 6)
        #expect(strategy.analysis.onNoData == .pause)
        #expect(strategy.analysis.providers == ["prom": .prometheus(PrometheusConfig(address: "http://prometheus:9090"))])
        // The provider is resolved when exactly one is declared.
        #expect(strategy.analysis.checks == [
            Check(name: "error-rate", provider: "prom", query: "rate(errors{app=\"{{name}}\"}[1m])", max: 0.01)
        ])
        #expect(strategy.rollback.automatic)
        #expect(strategy.notifications == [NotificationTarget(webhook: "https://hooks.example.com/x", on: ["RolledBack"])])
    }

    @Test func namespaceDefaultsToDefault() throws {
        let yaml = baseStrategy.replacingOccurrences(of: "  namespace: shop\n", with: "")
        #expect(try StrategyLoader.loadOne(yaml: yaml, file: "t.yaml").namespace == "default")
    }

    @Test func everyDocumentOfAFileIsLoadedAndEmptyDocumentsAreSkipped() throws {
        let second = baseStrategy.replacingOccurrences(of: "name: checkout\n", with: "name: cart\n")
        let result = StrategyLoader.load(yaml: "---\n" + baseStrategy + "---\n" + second + "---\n", file: "t.yaml")
        #expect(result.errors == [])
        #expect(result.strategies.map(\.name) == ["checkout", "cart"])
        #expect(result.positions.map(\.line) == [2, 28])
    }

    @Test func everyErrorOfEveryDocumentIsReportedInOrder() {
        let broken = baseStrategy
            .replacingOccurrences(of: "weight: 25", with: "weight: 2")
            .replacingOccurrences(of: "interval: 10s", with: "interval: 10")
        let result = StrategyLoader.load(yaml: broken + "---\n" + broken, file: "multi.yaml")
        let first = [
            "multi.yaml:13:29: error: spec.stages[1].weight: 2 is not greater than the previous stage's 5",
            "multi.yaml:16:15: error: spec.analysis.interval: expected a duration such as 90s, 30m or 1h30m, "
                + "got an integer (10)",
        ]
        let second = [
            "multi.yaml:39:29: error: spec.stages[1].weight: 2 is not greater than the previous stage's 5",
            "multi.yaml:42:15: error: spec.analysis.interval: expected a duration such as 90s, 30m or 1h30m, "
                + "got an integer (10)",
        ]
        #expect(result.errors.map(\.description) == first + second)
        #expect(result.strategies.isEmpty)
    }

    @Test func aValidDocumentStillLoadsBesideAnInvalidOne() {
        let broken = baseStrategy.replacingOccurrences(of: "name: checkout\n", with: "name: Cart\n")
        let result = StrategyLoader.load(yaml: baseStrategy + "---\n" + broken, file: "t.yaml")
        #expect(result.strategies.map(\.name) == ["checkout"])
        #expect(result.errors.map(\.path) == ["metadata.name"])
        #expect(throws: StrategyValidationError.self) { try StrategyLoader.loadValid(yaml: baseStrategy + "---\n" + broken, file: "t.yaml") }
    }

    @Test func theSameStrategyTwiceInAFileIsAnError() {
        let result = StrategyLoader.load(yaml: baseStrategy + "---\n" + baseStrategy, file: "t.yaml")
        #expect(result.errors.map(\.description) == [
            "t.yaml:30:9: error: metadata.name: strategy shop/checkout is already defined in this file at line 1"
        ])
        #expect(result.strategies.count == 1)
    }

    @Test func duplicateKeysAreReportedWithTheOtherErrors() {
        let yaml = baseStrategy
            .replacingOccurrences(of: "    interval: 10s\n", with: "    interval: 10s\n    interval: 20s\n")
            .replacingOccurrences(of: "  name: checkout\n", with: "  name: checkout\n  name: cart\n")
            .replacingOccurrences(of: "hold: 60m", with: "hold: forever")
        let result = StrategyLoader.load(yaml: yaml, file: "t.yaml")
        #expect(result.errors.map(\.description) == [
            "t.yaml:5:3: error: metadata.name: duplicate key \"name\" (first at line 4)",
            "t.yaml:14:39: error: spec.stages[1].hold: \"forever\" is not a duration: use a number and a unit "
                + "(ms, s, m, h), e.g. 90s, 30m, 1h30m",
            "t.yaml:18:5: error: spec.analysis.interval: duplicate key \"interval\" (first at line 17)",
        ])
        #expect(result.errors.map(\.code) == [.duplicateKey, .invalidValue, .duplicateKey])
    }

    @Test func aSyntaxErrorStopsAtItsPositionAfterCheckingEarlierDocuments() {
        let broken = baseStrategy.replacingOccurrences(of: "name: checkout", with: "name: cart")
            .replacingOccurrences(of: "  stages:\n", with: "  stages:\n   bad\n")
        let result = StrategyLoader.load(yaml: baseStrategy + "---\n" + broken, file: "t.yaml")
        #expect(result.strategies.map(\.name) == ["checkout"])
        #expect(result.errors.map(\.code) == [.syntax])
        #expect(result.errors.first?.line == 39)
    }

    @Test func anchorsAndAliasesAreRead() throws {
        let yaml = baseStrategy
            .replacingOccurrences(of: "  namespace: shop", with: "  namespace: shop\n  labels: {team: &team payments, owner: *team}")
            .replacingOccurrences(of: "    - {name: full, weight: 100}", with: "    - {name: full, weight: 100, hold: *hold}")
            .replacingOccurrences(of: "hold: 60m}", with: "hold: &hold 60m}")
        let strategy = try StrategyLoader.loadOne(yaml: yaml, file: "t.yaml")
        #expect(strategy.labels == ["team": "payments", "owner": "payments"])
        #expect(strategy.stages.last?.hold == .seconds(3600))
    }

    @Test func aFileWithEndlessErrorsStopsAt500() {
        let stages = (0..<2000).map { "    - {name: s\($0), weight: 0, hold: 1m}" }.joined(separator: "\n")
        let yaml = baseStrategy.replacingOccurrences(
            of: "    - {name: canary, weight: 5, hold: 30m}", with: stages
        )
        let result = StrategyLoader.load(yaml: yaml, file: "t.yaml")
        #expect(result.errors.count == 501)
        #expect(result.errors.last?.message == "too many errors; stopped after 500")
    }

    @Test func anEmptyFileIsAnError() {
        #expect(StrategyLoader.load(yaml: "# nothing\n", file: "e.yaml").errors.map(\.description) == [
            "e.yaml:1:1: error: no strategy document in this file"
        ])
    }

    @Test func jsonIsReadToo() throws {
        let json = """
            {"apiVersion": "sluice.dev/v1", "kind": "Strategy", "metadata": {"name": "api"},
             "spec": {"target": {"deployment": "api"},
                      "traffic": {"nginxIngress": {"ingress": "api", "canaryService": "api-canary"}},
                      "stages": [{"name": "all", "weight": 100, "pause": true}]}}
            """
        let strategy = try StrategyLoader.loadOne(yaml: json, file: "api.json")
        #expect(strategy.stages == [Stage(name: "all", weight: 100, hold: nil, pause: true)])
        #expect(strategy.analysis == Analysis())
    }

    @Test func onIsAKeyAndYesIsNotABoolean() {
        // YAML 1.1 would read `on:` as `true:` and `yes` as true; strategies use YAML 1.2 scalars.
        let result = StrategyLoader.load(
            yaml: baseStrategy.replacingOccurrences(of: "    - {name: full, weight: 100}", with: "    - {name: full, weight: 100, pause: on}"),
            file: "t.yaml"
        )
        #expect(result.errors.map(\.message) == ["expected true or false, got a string (\"on\")"])
    }

    @Test func everyExampleInStrategiesIsValid() throws {
        let directory = repositoryRoot() + "/strategies"
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 5)
        var keys: Set<StrategyKey> = []
        for file in files {
            let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            let result = StrategyLoader.load(yaml: text, file: file)
            #expect(result.errors == [], "\(file)")
            #expect(!result.strategies.isEmpty, "\(file)")
            for strategy in result.strategies {
                #expect(keys.insert(strategy.key).inserted, "\(strategy.key) defined twice")
            }
        }
    }

    @Test func checkoutIsTheDefaultStrategy() throws {
        let text = try String(contentsOfFile: repositoryRoot() + "/strategies/checkout.yaml", encoding: .utf8)
        let strategy = try StrategyLoader.loadOne(yaml: text, file: "checkout.yaml")
        #expect(strategy.stages.map(\.weight) == [5, 25, 50, 100])
        #expect(strategy.stages.prefix(3).map(\.hold) == [.seconds(30 * 60), .seconds(60 * 60), .seconds(120 * 60)])
        #expect(strategy.analysis.interval == .seconds(10))
        #expect(strategy.traffic.kind == .gatewayAPI)
        #expect(strategy.analysis.providers["prom"]?.kind == .prometheus)
        let thresholds = strategy.analysis.checks.filter { $0.compare == nil }
            .map { "\($0.name) max=\($0.max.map { "\($0)" } ?? "-") min=\($0.min.map { "\($0)" } ?? "-")" }
        #expect(thresholds == [
            "error-rate max=0.01 min=-", "p99-latency-seconds max=0.2 min=-", "availability max=- min=0.999",
        ])
        // Beside the thresholds, the recommended comparisons with stable (docs/strategy.md), and the pilot stage's
        // own: a drop of more than 5 % in a quality metric against stable.
        let comparisons = (strategy.analysis.checks + strategy.stages.flatMap(\.checks)).compactMap { check in
            check.compare.map { "\(check.name) \($0.kind.rawValue) \($0.maxIncrease)" }
        }
        #expect(comparisons == [
            "errors-vs-stable rate 0.2", "latency-vs-stable latency 0.15", "accuracy-vs-stable quality 0.05",
        ])
        #expect(strategy.stages[1].name == "pilot" && strategy.stages[1].checks.map(\.name) == ["accuracy-vs-stable"])
        let latency = try #require(strategy.analysis.checks.first { $0.name == "latency-vs-stable" }?.compare)
        #expect([latency.bucketBound(forCanary: false), latency.bucketBound(forCanary: true)] == ["0.1", "0.25"])
    }

    /// The demo (scripts/demo) is the first thing a new user runs (#22.7: a fresh clone's first run in under
    /// 5 minutes, docs/demo.md): its stages are held briefly, but it still shows the real thing: every stage
    /// to 100 %, held and checked more than once, the checks and comparisons of the recommended setup, and an
    /// automatic rollback on the first breach.
    @Test func theDemoStrategyIsShortAndStillTheRealThing() throws {
        let text = try String(contentsOfFile: repositoryRoot() + "/strategies/demo.yaml", encoding: .utf8)
        let strategy = try StrategyLoader.loadOne(yaml: text, file: "demo.yaml")
        #expect(strategy.stages.map(\.weight) == [10, 50, 100])
        let holds = strategy.stages.map { $0.hold ?? .zero }
        let interval = strategy.analysis.interval
        #expect(holds.allSatisfy { $0 >= interval * 2 }, "every stage is checked at least twice while held")
        // A promotion's floor: every hold, and a check's interval at each stage to see the weight's traffic.
        let promotion = holds.reduce(.zero, +) + interval * strategy.stages.count
        #expect(promotion <= .seconds(45), "v2 needs at least \(promotion) to be promoted")
        #expect(strategy.analysis.checks.map(\.name) == [
            "error-rate", "p99-latency-seconds", "availability", "errors-vs-stable", "latency-vs-stable",
        ])
        #expect(strategy.analysis.failureLimit == 1 && strategy.rollback.automatic)
    }

    @Test func errorsDescribeThemselvesCompilerStyle() {
        let error = StrategyError(
            code: .invalidValue, file: "strategies/checkout.yaml", line: 14, column: 15, path: "spec.stages[2].weight",
            message: "40 is not greater than the previous stage's 50"
        )
        #expect(error.description == "strategies/checkout.yaml:14:15: error: spec.stages[2].weight: 40 is not greater than the previous stage's 50")
    }
}

@Suite struct DurationGoTests {
    @Test(arguments: [
        ("90s", Duration.seconds(90), "1m30s"), ("30m", .seconds(1800), "30m"), ("1h30m", .seconds(5400), "1h30m"),
        ("500ms", .milliseconds(500), "500ms"), ("1.5h", .seconds(5400), "1h30m"), ("2h0m1s", .seconds(7201), "2h1s"),
        ("0", .zero, "0s"), ("120m", .seconds(7200), "2h"), ("1us", .microseconds(1), "1us"), ("3µs", .microseconds(3), "3us"),
        ("10ns", .nanoseconds(10), "10ns"), (".5s", .milliseconds(500), "500ms"),
    ])
    func parsesAndWritesBack(text: String, value: Duration, written: String) {
        #expect(Duration(go: text) == value)
        #expect(value.goString == written)
        #expect(Duration(go: written) == value)
    }

    @Test(arguments: ["", "10", "s", "-5s", "5 s", "5sec", "1d", "1.s.", "99999999999999999999h", "3000000h", "5s "])
    func rejects(text: String) {
        #expect(Duration(go: text) == nil)
    }
}

@Suite struct QueryTemplateTests {
    let context = TemplateContext(
        name: "checkout", namespace: "shop", stable: "checkout", canary: "checkout-canary", version: "v2",
        interval: .seconds(10)
    )

    @Test func everyTokenIsReplaced() {
        let check = Check(
            name: "c", provider: "p",
            query: "x{app=\"{{name}}\",ns=\"{{ namespace }}\",s=\"{{stable}}\",c=\"{{canary}}\",v=\"{{version}}\"}[{{interval}}]",
            max: 1
        )
        #expect(check.renderedQuery(context)
            == "x{app=\"checkout\",ns=\"shop\",s=\"checkout\",c=\"checkout-canary\",v=\"v2\"}[10s]")
    }

    /// A query, a version, and the query as sent.
    static let escapes: [(String, String, String)] = [
        // In a double-quoted literal: backslash, the quote and line breaks are escaped; the literal cannot end early.
        (#"up{v="{{version}}"}"#, "a\"} or vector(1) #\\\n", #"up{v="a\"} or vector(1) #\\\n"}"#),
        // Single quotes: that quote is escaped, a double quote needs nothing.
        ("up{v='{{version}}'}", #"it's "x""#, #"up{v='it\'s "x"'}"#),
        // Other control characters (ESC) as \x escapes.
        (#"up{v="{{version}}"}"#, "a\u{1B}[2Jb", #"up{v="a\x1b[2Jb"}"#),
        // An escaped quote does not end the literal.
        (#"up{v="\"{{version}}"}"#, #"a"b"#, #"up{v="\"a\"b"}"#),
        // Outside a literal, and in a raw string (which has no escapes), the value goes in as it is.
        ("x[{{version}}]", #"a"b"#, #"x[a"b]"#),
        ("up{v=`{{version}}`}", #"a"b"#, #"up{v=`a"b`}"#),
        // A quote in a comment opens no literal.
        ("up # don't\n{v=\"{{version}}\"}", #"a"b"#, #"up # don't"# + "\n" + #"{v="a\"b"}"#),
    ]

    @Test(arguments: escapes)
    func valuesInsideAStringLiteralAreEscaped(query: String, version: String, sent: String) {
        var context = context
        context.version = version
        #expect(Check(name: "c", provider: "p", query: query, max: 1).renderedQuery(context) == sent)
    }

    @Test func textWithoutTokensIsUnchanged() {
        let check = Check(name: "c", provider: "p", query: "sum(up{job=\"a\"}) by (x) {", max: 1)
        #expect(check.renderedQuery(context) == "sum(up{job=\"a\"}) by (x) {")
    }
}

@Suite struct RolloutVersionTests {
    @Test(arguments: ["v2", "1.2.3", "2026-12-06_build.7", "_x", "A" + String(repeating: "b", count: 127)])
    func anImageTagIsAVersion(_ version: String) {
        #expect(Rollout.versionProblem(version) == nil)
    }

    @Test(arguments: [
        "", "-v2", ".v2", "v 2", "v2\"", "v2\n", "v2\u{1B}[2J", "v2}", "v2'", "v/2", "v2:latest", "vé",
        "A" + String(repeating: "b", count: 128),
    ])
    func anythingElseIsRefusedWithTheRule(_ version: String) {
        let problem = Rollout.versionProblem(version)
        #expect(problem?.contains("is not a valid version: use letters, digits") == true)
        // The value is quoted with escapes: no raw line break or ESC reaches a terminal.
        #expect(problem?.contains(where: { $0.isNewline || $0 == "\u{1B}" }) == false)
    }
}
