import Foundation

/// One interval's counts behind a comparison: events (errors, or requests slower than the bound) and requests,
/// for the canary and for the stable baseline.
public struct ComparisonCounts: Sendable, Hashable, Codable {
    public var canaryEvents: Double
    public var canaryRequests: Double
    public var baselineEvents: Double
    public var baselineRequests: Double

    public init(canaryEvents: Double, canaryRequests: Double, baselineEvents: Double, baselineRequests: Double) {
        self.canaryEvents = canaryEvents
        self.canaryRequests = canaryRequests
        self.baselineEvents = baselineEvents
        self.baselineRequests = baselineRequests
    }

    /// Why these counts cannot be used (a negative, non-finite or impossible count), or nil when they can.
    public var problem: String? {
        let all = [canaryEvents, canaryRequests, baselineEvents, baselineRequests]
        if let bad = all.first(where: { !$0.isFinite || $0 < 0 }) { return "a count is \(bad)" }
        if canaryEvents > canaryRequests + 0.5 { return "canary events exceed its requests" }
        if baselineEvents > baselineRequests + 0.5 { return "baseline events exceed its requests" }
        return nil
    }
}

/// The evidence a comparison check has gathered (docs/judge.md): an e-process that starts at 1 and grows when
/// the canary's events come faster than the tolerated ratio allows. Stored in the rollout, so it survives restarts.
public struct ComparisonEvidence: Sendable, Hashable, Codable {
    /// Per alternative of `RateRatioTest.alternatives`, the log of the product of the per-interval likelihood ratios.
    public var logRatios: [Double]
    /// Totals since the test started (it carries across stages: the exposures of every interval are in the test).
    public var canaryEvents: Double = 0
    public var canaryRequests: Double = 0
    public var baselineEvents: Double = 0
    public var baselineRequests: Double = 0
    /// Intervals counted.
    public var intervals: Int = 0
    /// Canary requests counted since the current stage's weight was confirmed (the minimum evidence of a stage).
    public var stageCanaryRequests: Double = 0
    /// When the e-value first reached 1/alpha: the test has rejected, and the check breaches from then on.
    public var rejectedAt: Timestamp?

    public init() { logRatios = Array(repeating: 0, count: RateRatioTest.alternatives.count) }
}

/// A mixture sequential probability ratio test for two Poisson streams (docs/judge.md; Lindon & Malek,
/// "Anytime-valid inference for multinomial count data", NeurIPS 2022; Lindon, Sanden & Shirikian, KDD 2022).
///
/// Errors arrive as Poisson processes per request, at rate λc on the canary and λb on the baseline. Given the
/// k = ec + eb events of an interval with exposures nc and nb requests, ec ~ Binomial(k, p) with
/// p = ρ·nc / (ρ·nc + nb) and ρ = λc/λb. H0: ρ ≤ ρ0. For each alternative ρ1 > ρ0 the product over intervals of
/// the likelihood ratio Binomial(k, p(ρ1)) / Binomial(k, p(ρ0)) is a supermartingale under every ρ ≤ ρ0
/// (monotone likelihood ratio), whatever the exposures of each interval; a mixture of them with weights summing
/// to 1 is an e-process, so by Ville's inequality P(it ever reaches 1/α | H0) ≤ α, however often it is looked at.
public struct RateRatioTest: Sendable, Hashable {
    /// The alternatives, as multiples of ρ0, mixed with equal weights. Chosen by the Monte-Carlo tables in
    /// Tests/SluiceCoreTests/ComparisonStatisticsTests.swift: a single point at the true ratio is the ceiling
    /// (91 % of 2 %-vs-0.3 % canaries caught within 6 looks at ρ0 = 1.2); this grid reaches 85 %, and catches
    /// ratios up to 50·ρ0 at full strength.
    public static let alternatives: [Double] = [2, 3, 5, 10, 50]
    /// The alternatives of a reversed test (`quality`: a drop of a rate near 1, such as accuracy), where ρ0 is
    /// close to 1 and a regression is a ratio of 1.1 or 1.25, not 10: the rate grid would bet on drops no
    /// model ships with. Same count as `alternatives`, so stored evidence fits either.
    public static let dropAlternatives: [Double] = [1.05, 1.1, 1.2, 1.5, 2]

    /// ρ0: the largest canary-to-baseline rate ratio that is not a regression.
    public var nullRatio: Double
    public var alpha: Double

    /// True for `quality` (higher is better): the baseline's events play the canary's part, so the test asks
    /// whether stable's good answers come faster than ρ0 times the canary's.
    public var reversed: Bool

    public init(nullRatio: Double, alpha: Double, reversed: Bool = false) {
        self.nullRatio = nullRatio
        self.alpha = alpha
        self.reversed = reversed
    }

    /// The alternatives this test mixes, as multiples of ρ0.
    public var alternatives: [Double] { reversed ? Self.dropAlternatives : Self.alternatives }

    /// The e-value the test rejects at: 1/α.
    public var boundary: Double { 1 / alpha }

    /// `evidence` after one more interval; see `update(_:with:)`.
    public func updated(_ evidence: ComparisonEvidence, with counts: ComparisonCounts) -> ComparisonEvidence {
        var evidence = evidence
        update(&evidence, with: counts)
        return evidence
    }

    /// Adds one interval to `evidence`. An interval without events, or without requests on a side, says nothing
    /// about the ratio and leaves the e-value as it was. Event counts are rounded (Prometheus' `increase()`
    /// extrapolates to fractions); requests are exposures and are used as they are.
    public func update(_ evidence: inout ComparisonEvidence, with counts: ComparisonCounts) {
        let alternatives = self.alternatives
        if evidence.logRatios.count != alternatives.count {
            evidence.logRatios = Array(repeating: 0, count: alternatives.count)
        }
        let canaryEvents = counts.canaryEvents.rounded()
        let baselineEvents = counts.baselineEvents.rounded()
        evidence.intervals += 1
        evidence.canaryEvents += canaryEvents
        evidence.canaryRequests += counts.canaryRequests
        evidence.baselineEvents += baselineEvents
        evidence.baselineRequests += counts.baselineRequests
        let events = canaryEvents + baselineEvents
        guard events > 0, counts.canaryRequests > 0, counts.baselineRequests > 0 else { return }
        // Reversed, the sides swap parts: the totals above stay the canary's and the baseline's.
        let (testedEvents, testedRequests, otherRequests) =
            reversed
            ? (baselineEvents, counts.baselineRequests, counts.canaryRequests)
            : (canaryEvents, counts.canaryRequests, counts.baselineRequests)
        // With p(ρ) = ρ·nc / (ρ·nc + nb): log(p1/p0) = log(m) + log(q) and log((1-p1)/(1-p0)) = log(q), where
        // q = (ρ0·nc + nb) / (ρ1·nc + nb) and m = ρ1/ρ0: one logarithm per alternative.
        let null = nullRatio * testedRequests + otherRequests
        let logs = reversed ? Self.logDropAlternatives : Self.logAlternatives
        for index in 0..<alternatives.count {
            let multiple = alternatives[index]
            let logQ = log(null / (nullRatio * multiple * testedRequests + otherRequests))
            evidence.logRatios[index] += testedEvents * logs[index] + events * logQ
        }
    }

    private static let logAlternatives = alternatives.map { log($0) }
    private static let logDropAlternatives = dropAlternatives.map { log($0) }

    /// The e-value: the mixture of the alternatives' likelihood ratios (+infinity when it overflows a Double).
    public func eValue(_ evidence: ComparisonEvidence) -> Double {
        guard !evidence.logRatios.isEmpty else { return 1 }
        let weight = 1 / Double(evidence.logRatios.count)
        let top = evidence.logRatios.max() ?? 0
        let sum = evidence.logRatios.reduce(0) { $0 + weight * exp($1 - top) }
        return exp(top + log(sum))
    }

    /// Whether the e-value has reached 1/α. The mixture is at most its largest term, so while every term is
    /// below 1/α there is nothing to add up.
    public func rejects(_ evidence: ComparisonEvidence) -> Bool {
        guard let top = evidence.logRatios.max(), top >= log(boundary) else { return false }
        return eValue(evidence) >= boundary
    }
}

/// What one interval's counts make of a comparison check.
public enum ComparisonOutcome: Sendable, Hashable {
    case pass
    case breach
    /// The counts are good but the stage has not yet seen `minRequests` canary requests: not a pass.
    case collecting(String)
    /// The counts cannot be used: no-data, like a threshold check without a value.
    case noData(String)
    /// The provider answers for stable, but the canary, which has traffic, counts nothing: on
    /// `Comparison.silentLooksToBreach` looks in a row, a breach (docs/judge.md).
    case silent(String)
}

extension Comparison {
    /// Adds one interval's counts to `evidence` and judges: breach once the e-value reached 1/α (and from then on),
    /// pass once the stage has `minRequests` canary requests, collecting before. `countsForStage` is false for
    /// samples taken before the stage's weight was confirmed: they feed the test, not the stage's minimum.
    /// `canaryWeight` is the canary's confirmed weight, when it is: a canary that counts no request while the
    /// baseline's traffic says it should have had many is silent (a crashed canary's series vanish), a breach.
    public func judge(
        _ counts: ComparisonCounts?, evidence: ComparisonEvidence?, countsForStage: Bool, at time: Timestamp,
        canaryWeight: Int? = nil
    ) -> (evidence: ComparisonEvidence?, outcome: ComparisonOutcome) {
        guard let counts else { return (evidence, .noData("no counts")) }
        if let problem = counts.problem { return (evidence, .noData(problem)) }
        guard counts.canaryRequests > 0 else {
            if let silence = Self.silence(counts, canaryWeight: canaryWeight) { return (evidence, .silent(silence)) }
            return (evidence, .noData("no canary requests in the interval"))
        }
        let test = self.test
        var next = test.updated(evidence ?? ComparisonEvidence(), with: counts)
        if countsForStage { next.stageCanaryRequests += counts.canaryRequests }
        if next.rejectedAt == nil, test.rejects(next) { next.rejectedAt = time }
        if next.rejectedAt != nil { return (next, .breach) }
        guard next.stageCanaryRequests >= minRequests else {
            let have = ComparisonText.count(next.stageCanaryRequests)
            return (next, .collecting("collecting evidence: \(have) of \(ComparisonText.count(minRequests)) canary requests in this stage"))
        }
        return (next, .pass)
    }

    /// Requests the canary should have served in an interval where stable served `baselineRequests` at the
    /// canary's weight w: baseline × w / (100 - w). Below this many expected, seeing none is not evidence enough:
    /// P(0 | Poisson(30)) = 1e-13.
    public static let silentCanaryMinimum = 30.0

    /// Silent looks in a row that make a breach. One is not enough: a window of `increase(...)` that holds a
    /// single scrape of the canary's target is empty although the canary serves (scrape and tick in phase), and
    /// a good version must not be rolled back for it. Two keep a crash's rollback within two intervals.
    public static let silentLooksToBreach = 2

    /// Why a canary without requests is silent rather than idle, or nil when the baseline's traffic does not say.
    static func silence(_ counts: ComparisonCounts, canaryWeight: Int?) -> String? {
        guard let weight = canaryWeight, weight > 0, weight < 100 else { return nil }
        let expected = counts.baselineRequests * Double(weight) / Double(100 - weight)
        guard expected >= silentCanaryMinimum else { return nil }
        return "canary silent: 0 requests counted where its weight of \(weight)% expects about "
            + "\(ComparisonText.count(expected)) (stable served \(ComparisonText.count(counts.baselineRequests)))"
    }

    /// "errors 2/118 canary vs 31/10,402 stable; e-value 3.1 of 100 needed" for events, messages and `status`.
    public func explanation(_ evidence: ComparisonEvidence) -> String {
        let test = self.test
        let what: String
        switch kind {
        case .rate: what = "errors"
        case .latency: what = "slow"
        case .quality: what = "good"
        }
        var canaryBound = ""
        var baselineBound = ""
        if kind == .latency, let canary = bucketBound(forCanary: true), let baseline = bucketBound(forCanary: false) {
            canaryBound = " (>\(canary)s)"
            baselineBound = " (>\(baseline)s)"
        }
        let canary = "\(ComparisonText.count(evidence.canaryEvents))/\(ComparisonText.count(evidence.canaryRequests))"
        let baseline = "\(ComparisonText.count(evidence.baselineEvents))/\(ComparisonText.count(evidence.baselineRequests))"
        return "\(what) \(canary) canary\(canaryBound) vs \(baseline) stable\(baselineBound); "
            + "e-value \(ComparisonText.number(test.eValue(evidence))) of \(ComparisonText.number(test.boundary)) needed"
    }
}

/// Numbers as the explanations print them.
enum ComparisonText {
    /// A count with thousands separators: 10402 → "10,402"; fractions (from `increase()`) are rounded.
    static func count(_ value: Double) -> String {
        guard value.isFinite, abs(value) < 1e15 else { return "\(value)" }
        let digits = String(Int64(value.rounded()).magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out += "," }
            out.append(digit)
        }
        return (value < -0.5 ? "-" : "") + out
    }

    /// Two significant digits below 10, whole numbers above: 3.1, 100, 2.4e+12.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return value > 0 ? "∞" : "\(value)" }
        if value >= 1e6 { return String(format: "%.2g", value) }
        if value >= 10 { return String(Int64(value.rounded())) }
        return String(format: "%.2g", value)
    }
}
