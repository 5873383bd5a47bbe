import Foundation
import SluiceTestSupport
import Testing

@testable import SluiceCore

/// Seeded Monte-Carlo tables of the comparison tests (docs/judge.md "Measured"): simulated canaries at 12 req/s
/// beside a baseline at 108 req/s, one look per 10 s interval (120 and 1,080 requests), each request failing
/// (or being slow) on its own. The
/// figures are deterministic (SplitMix64, fixed seeds); the bounds below are what the doc states.
@Suite struct ComparisonStatisticsTests {
    /// 1000 runs: under H0 the number of false alarms is at most Binomial(1000, α); with α = 0.01 its mean is 10
    /// and its standard deviation 3.1, so "at most α" is checked as at most 20 (α + 3.2 σ, the Monte-Carlo margin).
    static let runs = 1000
    static let falseAlarmBound = 20

    @Test(arguments: [
        // (canary error rate, maxIncrease): no difference, and the hardest null: exactly the tolerated increase.
        (0.003, 0.2), (0.003 * 1.2, 0.2), (0.003, 0.0),
    ])
    func noWorseCanaryIsFlaggedAtMostAlphaOver360Looks(canaryRate: Double, maxIncrease: Double) {
        let test = RateRatioTest(nullRatio: 1 + maxIncrease, alpha: 0.01)
        let flagged = Simulation.rate(test, canary: canaryRate, baseline: 0.003, looks: 360, seed: 11)
            .filter { $0 != nil }.count
        #expect(flagged <= Self.falseAlarmBound, "\(flagged) of \(Self.runs) flagged")
    }

    @Test(arguments: [0.0, 0.2])
    func tenPercentErrorsAreCaughtWithinTwoLooks(maxIncrease: Double) {
        let test = RateRatioTest(nullRatio: 1 + maxIncrease, alpha: 0.01)
        let caught = Simulation.rate(test, canary: 0.10, baseline: 0.003, looks: 2, seed: 12).filter { $0 != nil }
        #expect(caught.count == Self.runs)
    }

    /// 2 % vs 0.3 %: ≥ 90 % within 6 looks with no tolerance; with 20 % tolerance ≥ 80 % within 6 and ≥ 99 % within
    /// 12 (measured: 92.7 %, 86.2 % and 99.5 %; a single alternative placed at the true ratio reaches ~91 % at 20 %).
    @Test(arguments: [(0.0, 6, 0.90), (0.2, 6, 0.80), (0.2, 12, 0.99)])
    func twoPercentErrorsAreCaughtWithinSixLooks(maxIncrease: Double, looks: Int, share: Double) {
        let test = RateRatioTest(nullRatio: 1 + maxIncrease, alpha: 0.01)
        let caught = Simulation.rate(test, canary: 0.02, baseline: 0.003, looks: looks, seed: 13)
            .filter { $0 != nil }.count
        #expect(Double(caught) >= share * Double(Self.runs), "\(caught) of \(Self.runs) caught within \(looks) looks")
    }

    /// Latency from buckets: slowerThan 250 ms, maxIncrease 50 ms, baseline log-normal (median 100 ms, σ 0.5).
    /// A 40 ms slower canary is within tolerance; a 50 ms slower one is exactly at it (the hardest null).
    @Test(arguments: [0.0, 0.040, 0.050])
    func latencyWithinToleranceIsNotFlagged(shift: Double) {
        let flagged = Simulation.latency(shift: shift, looks: 360, seed: 14).filter { $0 != nil }.count
        #expect(flagged <= Self.falseAlarmBound, "\(flagged) of \(Self.runs) flagged")
    }

    @Test func threeHundredMillisecondsSlowerIsCaughtWithinTwoLooks() {
        let caught = Simulation.latency(shift: 0.300, looks: 2, seed: 15).filter { $0 != nil }.count
        #expect(caught == Self.runs)
    }

    /// Quality (higher is better), `maxDecrease: 5%`: stable answers 90 % of its requests well. A canary as good,
    /// or exactly 5 % worse (85.5 %: the hardest null), is flagged at most α over 360 looks, although good answers
    /// are no rare events (the Poisson model overstates their variance, which makes the test conservative).
    @Test(arguments: [0.90, 0.855])
    func qualityNoWorseThanTheToleratedDropIsFlaggedAtMostAlpha(canary: Double) {
        let flagged = Simulation.rate(Simulation.quality, canary: canary, baseline: 0.90, looks: 360, seed: 16)
            .filter { $0 != nil }.count
        #expect(flagged <= Self.falseAlarmBound, "\(flagged) of \(Self.runs) flagged")
    }

    /// A 20 % drop (72 % good answers) and a 10 % drop (81 %) at 120 canary answers a look, with the share caught
    /// within the looks docs/judge.md states (measured: 784 within 6, 1000 within 12, median look 5; 877 within 60,
    /// median look 46).
    @Test(arguments: [(0.72, 6, 0.75), (0.72, 12, 0.99), (0.81, 60, 0.85)])
    func qualityDropsAreCaught(canary: Double, looks: Int, share: Double) {
        let caught = Simulation.rate(Simulation.quality, canary: canary, baseline: 0.90, looks: looks, seed: 17)
            .filter { $0 != nil }.count
        #expect(Double(caught) >= share * Double(Self.runs), "\(caught) of \(Self.runs) caught within \(looks) looks")
    }

    /// Evidence from intervals with different exposures (a stage's weight changing) still adds up: the same
    /// regression is caught whatever the split of canary and baseline requests.
    @Test func evidenceCarriesAcrossChangingExposures() {
        let test = RateRatioTest(nullRatio: 1.2, alpha: 0.01)
        var evidence = ComparisonEvidence()
        for (canary, baseline) in [(60.0, 1140.0), (120, 1080), (300, 900), (600, 600)] {
            evidence = test.updated(
                evidence,
                with: ComparisonCounts(
                    canaryEvents: canary * 0.03, canaryRequests: canary, baselineEvents: baseline * 0.003,
                    baselineRequests: baseline))
        }
        #expect(test.rejects(evidence))
        #expect(evidence.canaryRequests == 1080)
    }
}

/// The simulated canaries.
enum Simulation {
    /// Per run, the look at which the test rejected (nil: never within `looks`), with each of the canary's 120
    /// and the baseline's 1,080 requests of a look failing with probability `canary` and `baseline`.
    static func rate(_ test: RateRatioTest, canary: Double, baseline: Double, looks: Int, seed: UInt64) -> [Int?] {
        var random = SplitMix64(seed: seed)
        return (0..<ComparisonStatisticsTests.runs).map { _ in
            firstRejection(test, looks: looks) {
                ComparisonCounts(
                    canaryEvents: Double(random.binomial(120, canary)), canaryRequests: 120,
                    baselineEvents: Double(random.binomial(1080, baseline)), baselineRequests: 1080)
            }
        }
    }

    /// The quality comparison of `ComparisonStatisticsTests`: `maxDecrease: 5%`.
    static let quality = Comparison(
        kind: .quality, canary: ComparisonQueries(events: "c", requests: "c"),
        baseline: ComparisonQueries(events: "b", requests: "b"), maxIncrease: 0.05
    ).test

    /// The latency comparison of `ComparisonStatisticsTests`: the canary slower by `shift` seconds; a request is
    /// slow above `{{le}}` (0.3 s for the canary, 0.25 s for the baseline).
    static func latency(shift: Double, looks: Int, seed: UInt64) -> [Int?] {
        let compare = Comparison(
            kind: .latency, canary: ComparisonQueries(events: "c", requests: "c"),
            baseline: ComparisonQueries(events: "b", requests: "b"), maxIncrease: 0.050, slowerThan: 0.250)
        // P(latency > x) for the baseline's log-normal.
        func slower(_ x: Double) -> Double { x <= 0 ? 1 : 0.5 * erfc(log(x / 0.100) / (0.5 * 2.0.squareRoot())) }
        return rate(compare.test, canary: slower(0.300 - shift), baseline: slower(0.250), looks: looks, seed: seed)
    }

    private static func firstRejection(_ test: RateRatioTest, looks: Int, _ next: () -> ComparisonCounts) -> Int? {
        var evidence = ComparisonEvidence()
        for look in 1...looks {
            test.update(&evidence, with: next())
            if test.rejects(evidence) { return look }
        }
        return nil
    }
}

/// The draws the simulation needs, from the suite's deterministic generator (Tests/Support/SplitMix64.swift).
extension SplitMix64 {
    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) / Double(UInt64(1) << 53) }

    /// Binomial by inversion (expected work: the smaller of n·q and n·(1-q)).
    mutating func binomial(_ n: Int, _ q: Double) -> Int {
        if q <= 0 || n == 0 { return 0 }
        if q >= 1 { return n }
        if q > 0.5 { return n - binomial(n, 1 - q) }
        let odds = q / (1 - q)
        var term = pow(1 - q, Double(n))
        var u = uniform()
        var x = 0
        while u > term, x < n {
            u -= term
            let factor = Double(n - x) / Double(x + 1)
            term *= odds * factor
            x += 1
        }
        return x
    }
}
