import Foundation
import SluiceCore
import Testing

/// `baseStrategy` with a `minCount` on its threshold check and two comparisons beside it (lines 24-39).
let comparisonStrategy = baseStrategy.replacingOccurrences(
    of: "        max: 0.01\n",
    with: """
            max: 0.01
            minCount: {query: "sum(increase(requests[{{interval}}]))", min: 50}
          - name: errors-vs-stable
            compare:
              kind: rate
              canary: {errors: "sum(increase(errors{v=\\"{{canary}}\\"}[{{interval}}]))", requests: cr}
              baseline: {errors: be, requests: br}
              maxIncrease: 20%
          - name: latency-vs-stable
            compare:
              kind: latency
              slowerThan: 250ms
              maxIncrease: 50ms
              canary: {slower: "sum(increase(h_count[1m])) - sum(increase(h_bucket{le=\\"{{le}}\\"}[1m]))", requests: cr}
              baseline: {slower: "b{le=\\"{{le}}\\"}", requests: br}
              alpha: 0.001
              minRequests: 500
          - name: accuracy-vs-stable
            compare:
              kind: quality
              canary: {good: cg, requests: cr}
              baseline: {good: bg, requests: br}
              maxDecrease: 5%

    """)

/// Invalid variants of `comparisonStrategy`, run by `StrategyValidationTests.invalidDocument`.
let comparisonCases: [InvalidCase] = [
    InvalidCase(in: comparisonStrategy, "kind: rate", "kind: ratio",
                "27:17: spec.analysis.checks[1].compare.kind: unknown kind \"ratio\"; expected rate, latency or quality"),
    InvalidCase(in: comparisonStrategy, "maxIncrease: 20%", "maxIncrease: lots%",
                "30:24: spec.analysis.checks[1].compare.maxIncrease: \"lots%\" is not a percentage such as 20% (or the fraction 0.2)"),
    InvalidCase(in: comparisonStrategy, "maxIncrease: 20%", "maxIncrease: -0.1",
                "30:24: spec.analysis.checks[1].compare.maxIncrease: must be at least 0, got -0.1"),
    InvalidCase(in: comparisonStrategy, "          maxIncrease: 20%\n", "",
                "27:11: spec.analysis.checks[1].compare: missing required key \"maxIncrease\""),
    InvalidCase(in: comparisonStrategy, "baseline: {errors: be", "baseline: {slower: be",
                "29:21: spec.analysis.checks[1].compare.baseline: missing required key \"errors\"",
                "29:22: spec.analysis.checks[1].compare.baseline.slower: unknown key \"slower\"; expected \"errors\" or \"requests\""),
    InvalidCase(in: comparisonStrategy, "maxIncrease: 20%", "maxIncrease: 20%\n          slowerThan: 1s",
                "31:11: spec.analysis.checks[1].compare.slowerThan: slowerThan is for kind latency only"),
    InvalidCase(in: comparisonStrategy, "          slowerThan: 250ms\n", "",
                "33:11: spec.analysis.checks[2].compare: missing required key \"slowerThan\""),
    InvalidCase(in: comparisonStrategy, "maxIncrease: 50ms", "maxIncrease: 5%",
                "35:24: spec.analysis.checks[2].compare.maxIncrease: \"5%\" is not a duration: use a number and a unit (ms, s, m, h), e.g. 90s, 30m, 1h30m"),
    InvalidCase(in: comparisonStrategy, "alpha: 0.001", "alpha: 0.7",
                "38:18: spec.analysis.checks[2].compare.alpha: must be above 0 and below 0.5, got 0.7"),
    InvalidCase(in: comparisonStrategy, "minRequests: 500", "minRequests: 0",
                "39:24: spec.analysis.checks[2].compare.minRequests: must be at least 1, got 0"),
    // {{le}} belongs to latency comparisons only.
    InvalidCase(in: comparisonStrategy, "requests: cr}\n          baseline: {errors", "requests: \"x{{le}}\"}\n          baseline: {errors",
                "28:97: spec.analysis.checks[1].compare.canary.requests: unknown template \"{{le}}\"; known: {{name}}, {{namespace}}, {{stable}}, {{canary}}, {{version}}, {{interval}}"),
    InvalidCase(in: comparisonStrategy, "- name: errors-vs-stable\n", "- name: errors-vs-stable\n        max: 1\n",
                "26:9: spec.analysis.checks[1].max: a compare check has no max: the comparison with stable is its test"),
    // quality: higher is better, its tolerance a drop below 100 %, its sides' events `good`.
    InvalidCase(in: comparisonStrategy, "maxDecrease: 5%", "maxDecrease: 100%",
                "45:24: spec.analysis.checks[3].compare.maxDecrease: must be below 100%, got 100%"),
    InvalidCase(in: comparisonStrategy, "maxDecrease: 5%", "maxIncrease: 5%",
                "42:11: spec.analysis.checks[3].compare: missing required key \"maxDecrease\"",
                "45:11: spec.analysis.checks[3].compare.maxIncrease: a quality comparison's tolerance is maxDecrease (higher is better)"),
    InvalidCase(in: comparisonStrategy, "maxIncrease: 20%", "maxIncrease: 20%\n          maxDecrease: 5%",
                "31:11: spec.analysis.checks[1].compare.maxDecrease: maxDecrease is for kind quality only (higher is better)"),
    InvalidCase(in: comparisonStrategy, "canary: {good: cg", "canary: {errors: cg",
                "43:19: spec.analysis.checks[3].compare.canary: missing required key \"good\"",
                "43:20: spec.analysis.checks[3].compare.canary.errors: unknown key \"errors\"; expected \"good\" or \"requests\""),
    InvalidCase(in: comparisonStrategy, "min: 50}", "min: -5}",
                "24:73: spec.analysis.checks[0].minCount.min: must be at least 0, got -5"),
    InvalidCase(in: comparisonStrategy, "min: 50}", "mn: 50}",
                "24:68: spec.analysis.checks[0].minCount.mn: unknown key \"mn\"; did you mean \"min\"?"),
]

/// `compare:` and `minCount` in the strategy format: read, rendered, validated with line:column.
@Suite struct StrategyComparisonTests {
    @Test func comparisonStrategyReads() throws {
        let result = StrategyLoader.load(yaml: comparisonStrategy, file: "t.yaml")
        #expect(result.errors == [])
        let checks = try #require(result.strategies.first).analysis.checks
        #expect(checks.count == 4)
        #expect(checks[0].minCount == MinCount(query: "sum(increase(requests[{{interval}}]))", min: 50))
        let rate = try #require(checks[1].compare)
        #expect(rate.kind == .rate)
        #expect(rate.maxIncrease == 0.2)
        #expect(rate.nullRatio == 1.2)
        #expect(rate.alpha == 0.01)
        #expect(rate.minRequests == 100)
        let latency = try #require(checks[2].compare)
        #expect(latency.kind == .latency)
        #expect(latency.slowerThan == 0.25)
        #expect(latency.maxIncrease == 0.05)
        #expect(latency.alpha == 0.001)
        #expect(latency.minRequests == 500)
        let quality = try #require(checks[3].compare)
        #expect(quality.kind == .quality)
        #expect(quality.maxIncrease == 0.05)
        #expect(abs(quality.nullRatio - 1 / 0.95) < 1e-12)
        #expect(quality.test.reversed && quality.test.alternatives == RateRatioTest.dropAlternatives)
        #expect(!rate.test.reversed && rate.test.alternatives == RateRatioTest.alternatives)
    }

    /// A drop is the regression of a quality comparison: 70 % good answers on the canary against stable's 90 %
    /// breaches at once; 90 % against 90 % passes; 99 % (better) passes. The counts stay each side's own.
    @Test(arguments: [(700.0, SampleVerdict.breach), (900, .pass), (990, .pass)])
    func aQualityComparisonFlagsADrop(canaryGood: Double, verdict: SampleVerdict) throws {
        let strategy = try #require(StrategyLoader.load(yaml: comparisonStrategy, file: "t.yaml").strategies.first)
        let quality = try #require(strategy.analysis.checks[3].compare)
        let counts = ComparisonCounts(
            canaryEvents: canaryGood, canaryRequests: 1000, baselineEvents: 8100, baselineRequests: 9000)
        let (evidence, outcome) = quality.judge(
            counts, evidence: nil, countsForStage: true, at: Timestamp(millisecondsSinceEpoch: 0))
        #expect(outcome == (verdict == .breach ? .breach : .pass))
        let judged = try #require(evidence)
        #expect(judged.canaryEvents == canaryGood && judged.baselineEvents == 8100)
        #expect(quality.explanation(judged).hasPrefix("good \(Int(canaryGood))/1,000 canary vs 8,100/9,000 stable"))
    }

    @Test func latencyBucketsAreRenderedPerSide() throws {
        let strategy = try #require(StrategyLoader.load(yaml: comparisonStrategy, file: "t.yaml").strategies.first)
        let context = TemplateContext(
            name: "checkout", namespace: "shop", stable: "s", canary: "c", version: "v2", interval: .seconds(10))
        let latency = strategy.analysis.checks[2].renderedQueries(context)
        #expect(latency.canary?.events == "sum(increase(h_count[1m])) - sum(increase(h_bucket{le=\"0.3\"}[1m]))")
        #expect(latency.baseline?.events == "b{le=\"0.25\"}")
        let rate = strategy.analysis.checks[1].renderedQueries(context)
        #expect(rate.canary?.events == "sum(increase(errors{v=\"c\"}[10s]))")
        #expect(strategy.analysis.checks[0].renderedQueries(context).count == "sum(increase(requests[10s]))")
    }

    /// The canonical form (what `sluice strategy get` shows and the store keeps) reads back to the same strategy.
    @Test func canonicalJSONReadsBackTheSame() throws {
        let strategy = try #require(StrategyLoader.load(yaml: comparisonStrategy, file: "t.yaml").strategies.first)
        let again = StrategyLoader.load(yaml: strategy.canonicalJSON(), file: "c.json")
        #expect(again.errors == [])
        #expect(again.strategies.first == strategy)
    }

    @Test func schemaDescribesComparisons() {
        for key in [
            "\"compare\"", "\"minCount\"", "\"slowerThan\"", "\"maxIncrease\"", "\"minRequests\"", "\"maxDecrease\"",
            "\"quality\"", "\"good\"",
        ] {
            #expect(StrategySchema.json.contains(key), "schema lacks \(key)")
        }
    }
}
