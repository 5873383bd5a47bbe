import Foundation
import Testing

@testable import SluiceCore

/// `compare:` checks and `minCount` in `decide` (docs/decide.md "Analysis", docs/judge.md): evidence accumulates
/// in the rollout across ticks, a stage cannot end before the comparison has its minimum evidence, a breach of the
/// boundary follows the check's failure policy, and the events carry the counts and the e-value.
@Suite struct DecideComparisonTests {
    static let errorsVsStable = Check(
        name: "errors-vs-stable", provider: "prom",
        compare: Comparison(
            kind: .rate, canary: ComparisonQueries(events: "ce", requests: "cr"),
            baseline: ComparisonQueries(events: "be", requests: "br"), maxIncrease: 0.2, minRequests: 200))

    /// Two stages of 30 s at 10 % and 100 %, with the comparison as the only check.
    static func strategy(failureLimit: Int = 1, automatic: Bool = true, checks: [Check] = [errorsVsStable]) -> Strategy {
        Fixture.strategy(
            stages: [
                Stage(name: "canary", weight: 10, hold: .seconds(30)),
                Stage(name: "full", weight: 100, hold: .seconds(30)),
            ],
            checks: checks, failureLimit: failureLimit, automatic: automatic)
    }

    static func counts(_ canaryErrors: Double, _ canaryRequests: Double, _ baselineErrors: Double = 3, _ baselineRequests: Double = 1080)
        -> (Timestamp) -> [Sample]
    {
        { time in
            [
                Sample(
                    check: "errors-vs-stable", time: time, value: nil, verdict: .pass,
                    counts: ComparisonCounts(
                        canaryEvents: canaryErrors, canaryRequests: canaryRequests, baselineEvents: baselineErrors,
                        baselineRequests: baselineRequests))
            ]
        }
    }

    @Test func aStageCannotEndBeforeTheComparisonHasItsMinimumEvidence() {
        var driver = Driver(strategy: Self.strategy())
        driver.confirmFirstStage()
        // 60 canary requests a look: 200 are reached on the 4th look, past the 30 s hold.
        for look in 1...3 {
            let d = driver.tick(samples: Self.counts(0, 60))
            #expect(d.rollout.stageIndex == 0, "look \(look)")
            let last = d.rollout.checks["errors-vs-stable"]?.lastSample
            #expect(last?.verdict == .noData)
            #expect(last?.reason?.hasPrefix("collecting evidence: \(60 * look) of 200 canary requests") == true)
            // Collecting is not a no-data streak: it never pauses a rollout whose provider answers.
            #expect(d.rollout.checks["errors-vs-stable"]?.consecutiveNoData == 0)
            #expect(d.events.isEmpty)
        }
        #expect(driver.rollout.holdProgress?.heldMilliseconds == 0)
        let fourth = driver.tick(samples: Self.counts(0, 60))
        #expect(fourth.rollout.checks["errors-vs-stable"]?.lastSample?.verdict == .pass)
        #expect(fourth.rollout.holdProgress?.heldMilliseconds == 10_000)
        driver.tick(samples: Self.counts(0, 60))
        let ended = driver.tick(samples: Self.counts(0, 60))
        #expect(ended.events.map(\.type).contains(.stageCompleted))
        #expect(ended.rollout.stageIndex == 1)
    }

    @Test func evidenceCarriesIntoTheNextStageButTheMinimumStartsOver() {
        var driver = Driver(strategy: Self.strategy())
        driver.confirmFirstStage()
        // 120 a look: collecting, then 3 passes back the 30 s hold.
        for _ in 0..<10 where driver.rollout.stageIndex == 0 { driver.tick(samples: Self.counts(0, 120)) }
        #expect(driver.rollout.stageIndex == 1)
        let carried = driver.rollout.checks["errors-vs-stable"]?.evidence
        #expect(carried?.intervals == 4)
        #expect(carried?.canaryRequests == 480)
        #expect(carried?.stageCanaryRequests == 0)
        // The next stage's first samples come before its weight is confirmed: they feed the test, not the
        // stage's minimum, and the check is collecting again.
        driver.tick(samples: Self.counts(0, 120))
        let d = driver.tick(samples: Self.counts(0, 120))
        #expect(d.rollout.stageStartedAt != nil)
        #expect(d.rollout.checks["errors-vs-stable"]?.evidence?.intervals == 6)
        #expect(d.rollout.checks["errors-vs-stable"]?.evidence?.stageCanaryRequests == 0)
        #expect(d.rollout.checks["errors-vs-stable"]?.lastSample?.verdict == .noData)
        #expect(d.rollout.checks["errors-vs-stable"]?.lastSample?.reason?.hasPrefix("collecting evidence: 0 of 200") == true)
    }

    /// A breach of the boundary rolls back (automatic) or pauses (not automatic) like any breach, and says why
    /// with the counts: "errors 12/120 canary vs 3/1,080 stable; e-value … of 100 needed".
    @Test(arguments: [true, false])
    func reachingTheBoundaryIsABreachUnderTheChecksFailurePolicy(automatic: Bool) {
        var driver = Driver(strategy: Self.strategy(automatic: automatic))
        driver.confirmFirstStage()
        let d = driver.tick(samples: Self.counts(12, 120))
        #expect(d.rollout.phase == (automatic ? .rollingBack : .paused))
        let breach = d.events.first { $0.type == .checkBreached }
        #expect(breach?.message.contains("errors 12/120 canary vs 3/1,080 stable; e-value") == true)
        #expect(breach?.message.contains("of 100 needed") == true)
        #expect(breach?.data["canaryEvents"] == .number(12))
        #expect(breach?.data["baselineRequests"] == .number(1080))
        #expect(breach?.data["boundary"] == .number(100))
        if case .number(let e)? = breach?.data["eValue"] { #expect(e >= 100) } else { Issue.record("no eValue") }
        #expect(d.rollout.checks["errors-vs-stable"]?.lastSample?.explanation?.hasPrefix("errors 12/120") == true)
    }

    /// A quality comparison (higher is better) breaches on a drop, says so with its good answers, and names its
    /// tolerance as the file does: `maxDecrease`.
    @Test func aQualityDropBreachesWithItsOwnWords() {
        let accuracy = Check(
            name: "errors-vs-stable", provider: "prom",
            compare: Comparison(
                kind: .quality, canary: ComparisonQueries(events: "cg", requests: "cr"),
                baseline: ComparisonQueries(events: "bg", requests: "br"), maxIncrease: 0.05, minRequests: 100))
        var driver = Driver(strategy: Self.strategy(checks: [accuracy]))
        driver.confirmFirstStage()
        let d = driver.tick(samples: Self.counts(700, 1000, 8100, 9000))
        #expect(d.rollout.phase == .rollingBack)
        let breach = d.events.first { $0.type == .checkBreached }
        #expect(breach?.message.contains("breaches the quality comparison with stable") == true, "\(breach?.message ?? "")")
        #expect(breach?.message.contains("good 700/1,000 canary vs 8,100/9,000 stable; e-value") == true)
        #expect(breach?.data["maxDecrease"] == .number(0.05) && breach?.data["maxIncrease"] == nil)
        #expect(breach?.data["kind"] == .string("quality"))
    }

    /// Small excesses add up: no single look reaches the boundary, several do, and the test stays rejected.
    @Test func evidenceAccumulatesAcrossTicksUntilTheBoundary() {
        var driver = Driver(strategy: Self.strategy(failureLimit: 3))
        driver.confirmFirstStage()
        var looks = 0
        while driver.rollout.phase == .progressing, looks < 20 {
            driver.tick(samples: Self.counts(3, 120))
            looks += 1
        }
        #expect(looks > 1)
        #expect(driver.rollout.phase == .rollingBack)
        let evidence = driver.rollout.checks["errors-vs-stable"]?.evidence
        #expect(evidence?.rejectedAt != nil)
        #expect(driver.rollout.checks["errors-vs-stable"]?.consecutiveBreaches == 3)
    }

    @Test(arguments: [
        (nil as ComparisonCounts?, "no counts"),
        (ComparisonCounts(canaryEvents: -1, canaryRequests: 10, baselineEvents: 0, baselineRequests: 10), "a count is -1.0"),
        (ComparisonCounts(canaryEvents: 0, canaryRequests: 0, baselineEvents: 0, baselineRequests: 10), "no canary requests in the interval"),
        (ComparisonCounts(canaryEvents: 20, canaryRequests: 10, baselineEvents: 0, baselineRequests: 10), "canary events exceed its requests"),
    ])
    func unusableCountsAreNoData(counts: ComparisonCounts?, reason: String) {
        var driver = Driver(strategy: Self.strategy())
        driver.confirmFirstStage()
        let d = driver.tick { time in
            [Sample(check: "errors-vs-stable", time: time, value: nil, verdict: .pass, counts: counts)]
        }
        #expect(d.events.map(\.type) == [.checkNoData])
        #expect(d.rollout.checks["errors-vs-stable"]?.lastSample?.reason == reason)
        #expect(d.rollout.checks["errors-vs-stable"]?.consecutiveNoData == 1)
    }

    /// A dead canary is not a dead provider (#23.8): stable's traffic says how many requests the canary should
    /// have served at its weight; none counted where ≥ 30 were due, on two looks in a row, is a breach, not no-data.
    @Test(arguments: [
        // (baseline requests, canary weight confirmed, verdict of the second silent look)
        (1080.0, true, SampleVerdict.breach), (200, true, .noData), (1080, false, .noData),
    ])
    func aSilentCanaryBesideABusyStableIsABreach(baselineRequests: Double, confirmed: Bool, verdict: SampleVerdict) {
        var driver = Driver(strategy: Self.strategy())
        driver.tick()
        if confirmed { driver.tick() }
        driver.tick(samples: Self.counts(0, 0, 3, baselineRequests))
        let d = driver.tick(samples: Self.counts(0, 0, 3, baselineRequests))
        #expect(d.rollout.checks["errors-vs-stable"]?.lastSample?.verdict == verdict)
        #expect(d.rollout.phase == (verdict == .breach ? .rollingBack : .progressing))
        if verdict == .breach {
            let breach = d.events.first { $0.type == .checkBreached }
            #expect(
                breach?.message.contains(
                    "canary silent: 0 requests counted where its weight of 10% expects about 120 (stable served 1,080) on 2 looks in a row")
                    == true)
        }
    }

    /// The looks of a stage at 10 % after its weight is confirmed, as (canary errors, canary requests); nil is a
    /// look whose canary queries came back empty while stable served 1,080 (the runner counts 0 for the canary),
    /// and "down" a look where the provider did not answer at all.
    enum Look { case counts(Double, Double), silent, down }

    /// One silent look is not a breach (a window holding a single scrape of the canary's target is empty while it
    /// serves: CI rolled back a good v2 for exactly that); two in a row are, so a crash is rolled back within two
    /// intervals of its series going silent. A look between them that is not silent starts the count over.
    @Test(arguments: [
        // (looks, the look (1-based) that starts the rollback, or nil)
        ([Look.silent, .counts(0, 120), .counts(0, 120)], nil as Int?),
        ([Look.silent, .silent], 2),
        ([Look.counts(0, 120), .counts(0, 120), .silent, .silent], 4),
        ([Look.counts(0, 120), .silent, .counts(0, 120), .silent, .counts(0, 120)], nil),
        ([Look.silent, .down, .silent, .counts(0, 120)], nil),
        ([Look.counts(0, 120), .silent, .silent, .silent], 3),
    ])
    func aCanaryMustBeSilentOnTwoLooksInARowToBreach(looks: [Look], rollbackAt: Int?) {
        var driver = Driver(strategy: Self.strategy())
        driver.confirmFirstStage()
        var rolledBackAt: Int?
        for (index, look) in looks.enumerated() where rolledBackAt == nil {
            let noDataBefore = driver.rollout.checks["errors-vs-stable"]?.consecutiveNoData
            let d = driver.tick { time in
                switch look {
                case .counts(let errors, let requests): return Self.counts(errors, requests)(time)
                case .silent: return Self.counts(0, 0)(time)
                case .down: return [Sample(check: "errors-vs-stable", time: time, value: nil, verdict: .noData, reason: "connection refused")]
                }
            }
            let state = d.rollout.checks["errors-vs-stable"]
            if case .silent = look, d.rollout.phase == .progressing {
                // The first silent look: not a pass (the stage cannot end on it), not a no-data streak, no event.
                #expect(state?.lastSample?.verdict == .noData)
                #expect(state?.lastSample?.reason?.contains("silent on 1 look(s), 2 in a row are a breach") == true)
                #expect(state?.consecutiveNoData == noDataBefore)
                #expect(state?.silentLooks == 1)
                #expect(!d.events.contains { $0.type == .checkBreached || $0.type == .checkNoData })
            }
            if case .counts = look { #expect(state?.silentLooks == nil) }
            if d.rollout.phase == .rollingBack { rolledBackAt = index + 1 }
        }
        #expect(rolledBackAt == rollbackAt)
        if rollbackAt == nil { #expect(driver.rollout.phase == .progressing || driver.rollout.phase == .succeeded) }
    }

    /// A canary that crashes mid-stage on the virtual clock: the looks before the crash pass, the window of the
    /// first look after it may still hold the canary's last scrapes, and from then on its series are gone. The
    /// rollback starts within two intervals of the first silent look, and the crash's window is the only thing
    /// between them: never a pause.
    @Test(arguments: [1, 2, 3])
    func aCanaryThatCrashesMidStageIsRolledBackWithinTwoIntervals(looksBeforeTheCrash: Int) {
        var strategy = Self.strategy()
        strategy.stages[0].hold = .seconds(120)
        var driver = Driver(strategy: strategy)
        driver.confirmFirstStage()
        for _ in 0..<looksBeforeTheCrash { driver.tick(samples: Self.counts(0, 120)) }
        let crashed = driver.now
        // The window of the first look after the crash still holds part of the canary's traffic.
        driver.tick(samples: Self.counts(0, 40))
        var ticks = 0
        while driver.rollout.phase == .progressing, ticks < 10 {
            driver.tick(samples: Self.counts(0, 0))
            ticks += 1
        }
        #expect(driver.rollout.phase == .rollingBack)
        #expect(driver.rollout.rollbackCause == .breach(check: "errors-vs-stable"))
        #expect(driver.now - crashed <= .seconds(30), "crash at \(crashed), rollback at \(driver.now)")
        #expect(ticks == 2)
        #expect(!driver.allEvents.contains(.paused))
    }

    /// A rollout stored before silent looks were counted decodes (no `silentLooks` key), and the count survives
    /// the store's JSON round trip, so a restart between two silent looks still breaches on the second.
    @Test func silentLooksSurviveARestartAndOldStateDecodes() throws {
        var driver = Driver(strategy: Self.strategy())
        driver.confirmFirstStage()
        driver.tick(samples: Self.counts(0, 120))
        let old = try JSONEncoder().encode(driver.rollout)
        #expect(!String(decoding: old, as: UTF8.self).contains("silentLooks"))
        #expect(try JSONDecoder().decode(Rollout.self, from: old).checks["errors-vs-stable"]?.silentLooks == nil)
        driver.tick(samples: Self.counts(0, 0))
        let stored = try JSONEncoder().encode(driver.rollout)
        var restarted = driver
        restarted.rollout = try JSONDecoder().decode(Rollout.self, from: stored)
        #expect(restarted.rollout.checks["errors-vs-stable"]?.silentLooks == 1)
        #expect(restarted.tick(samples: Self.counts(0, 0)).rollout.phase == .rollingBack)
    }

    /// The evidence is state in the rollout: it survives the store's JSON round trip whole.
    @Test func evidenceSurvivesAJSONRoundTrip() throws {
        var driver = Driver(strategy: Self.strategy())
        driver.confirmFirstStage()
        driver.tick(samples: Self.counts(2, 120))
        let data = try JSONEncoder().encode(driver.rollout)
        let decoded = try JSONDecoder().decode(Rollout.self, from: data)
        #expect(decoded == driver.rollout)
        #expect(decoded.checks["errors-vs-stable"]?.evidence?.canaryEvents == 2)
    }

    // MARK: minCount

    static let guardedErrorRate = Check(
        name: "error-rate", provider: "prom", query: "errors", max: 0.01, minCount: MinCount(query: "requests", min: 50))

    static func errorRate(_ value: Double, count: Double?) -> (Timestamp) -> [Sample] {
        { time in [Sample(check: "error-rate", time: time, value: value, verdict: .pass, count: count)] }
    }

    @Test(arguments: [
        // (value, count, verdict): too few requests is no-data, whatever the value says.
        (0.5, 12.0 as Double?, SampleVerdict.noData), (0.0, 12, .noData), (0.5, nil, .noData),
        (0.5, 50, .breach), (0.0, 120, .pass),
    ])
    func minCountTurnsAThinWindowIntoNoData(value: Double, count: Double?, verdict: SampleVerdict) {
        var driver = Driver(strategy: Self.strategy(checks: [Self.guardedErrorRate]))
        driver.confirmFirstStage()
        let d = driver.tick(samples: Self.errorRate(value, count: count))
        #expect(d.rollout.checks["error-rate"]?.lastSample?.verdict == verdict)
        #expect(d.rollout.phase == (verdict == .breach ? .rollingBack : .progressing))
        if count == 12 {
            #expect(d.rollout.checks["error-rate"]?.lastSample?.reason == "minCount: 12 in the window, fewer than 50")
        }
    }
}
