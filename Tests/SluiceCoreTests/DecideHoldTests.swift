import Foundation
import Testing

@testable import SluiceCore

/// No stage ends, and nothing is promoted, on stale evidence: a stage ends only on a tick that brings a pass of
/// every check, and its hold counts only the intervals such passes back (not no-data, breaches, pauses or gaps).
@Suite struct DecideHoldTests {
    /// (seconds held before this tick, this tick's sample, router reads back) -> the stage ends; hold 60 s.
    @Test(arguments: [
        (50, "pass", true, true),
        (49, "pass", true, false),
        (50, "no-data", true, false),
        (50, "breach", true, false),
        (50, "none", true, false),
        (50, "pass", false, false),
        (590, "pass", true, true),
    ])
    func stageEndsOnlyOnAFreshPassOfEveryCheckOnceItsHoldIsBacked(
        held: Int, sample: String, readBack: Bool, ends: Bool
    ) throws {
        let strategy = Fixture.strategy(failureLimit: 3, noDataLimit: 3)
        let before = Fixture.at(held)
        let earlierPass = Sample(check: "error-rate", time: before, value: 0, verdict: .pass)
        var rollout = Rollout(
            id: "r-1", strategy: strategy.key, strategyRevision: 1, version: "v2", phase: .progressing,
            stageStartedAt: Fixture.at(0), desiredWeight: 5,
            checks: ["error-rate": CheckState(passedInStage: true, lastSample: earlierPass)], createdAt: Fixture.at(0),
            updatedAt: before)
        rollout.holdProgress = HoldProgress(heldMilliseconds: Int64(held) * 1000, countedUntil: before)
        let now = before + .seconds(10)
        let values: [String: Double?] =
            switch sample {
            case "pass": ["error-rate": 0]
            case "breach": ["error-rate": 0.5]
            case "no-data": ["error-rate": nil]
            default: [:]
            }
        let d = decide(
            rollout, strategy: strategy, input: Fixture.observed(values, router: readBack ? 5 : 7, at: now), now: now)
        #expect(d.events.contains { $0.type == .stageCompleted } == ends)
        #expect(d.rollout.stageIndex == (ends ? 1 : 0))
        if ends {
            #expect(d.effects == [.deployCanary(version: "v2", weight: 25)])
            #expect(d.rollout.checks["error-rate"]?.passedInStage == false)
            #expect(d.rollout.checks["latency"] == CheckState())
            #expect(d.rollout.stageStartedAt == nil)
            #expect(d.rollout.holdProgress == nil)
        } else {
            let backed = sample == "pass" && readBack
            let progress = try #require(d.rollout.holdProgress)
            #expect(progress.held == .seconds(held + (backed ? 10 : 0)))
            #expect(progress.countedUntil == now)
        }
    }

    /// One tick per character, 10 s apart, after the weight of the first stage (hold 60 s) was read back:
    /// P pass, N no-data, B breach, - no sample at all. -> the tick (1-based) whose decision ends the stage.
    @Test(arguments: [
        ("PPPPPP", 6),
        ("PPNNPPPP", 8),
        ("PPPPPNNNN", nil),
        ("PPPPPNP", 7),
        ("NNNPPPPPP", 9),
        ("PBPPPPP", 7),
        ("P-PPPPP", 7),
        ("NPNPNPNPNPNP", 12),
    ] as [(String, Int?)])
    func theHoldCountsOnlyTheIntervalsPassesBack(ticks: String, endsOnTick: Int?) {
        var driver = Driver(strategy: Fixture.strategy(failureLimit: 3, noDataLimit: 20))
        driver.confirmFirstStage()
        var ended: Int?
        for (index, kind) in ticks.enumerated() {
            let values: [String: Double?] =
                switch kind {
                case "P": ["error-rate": 0]
                case "N": ["error-rate": nil]
                case "B": ["error-rate": 0.5]
                default: [:]
                }
            let d = driver.tick(values)
            if d.events.contains(where: { $0.type == .stageCompleted }) {
                ended = index + 1
                break
            }
        }
        #expect(ended == endsOnTick)
    }

    /// The reported case: the metric source turns to garbage after one pass in the last stage. The hold's wall time
    /// passes, but the rollout is never promoted; `onNoData` decides what happens instead.
    @Test(arguments: NoDataAction.allCases)
    func theLastStageIsNeverPromotedOnStaleEvidence(action: NoDataAction) {
        var driver = Driver(strategy: Fixture.strategy(noDataLimit: 6, onNoData: action))
        driver.confirmFirstStage()
        for _ in 0..<40 where driver.rollout.stageIndex < 2 || driver.rollout.stageStartedAt == nil {
            driver.tick(["error-rate": 0, "latency": 0.1])
        }
        #expect(driver.world.routerWeight == 100)
        driver.tick(["error-rate": 0])
        let before = driver.decisions.count
        for _ in 0..<5 { driver.tick(["error-rate": nil]) }  // 60 s since the weight was read back
        let blind = driver.decisions[before...]
        #expect(blind.flatMap(\.events).map(\.type) == [.checkNoData])
        #expect(blind.allSatisfy { $0.effects.isEmpty })
        #expect(driver.rollout.phase == .progressing)
        #expect(driver.rollout.holdProgress?.held == .seconds(10))
        #expect(driver.rollout.holdRemaining(in: driver.strategy) == .seconds(50))

        let limit = driver.tick(["error-rate": nil])
        switch action {
        case .rollback:
            #expect(limit.rollout.phase == .rollingBack)
            #expect(limit.effects.first == .setWeight(0))
            driver.tick()
            #expect(driver.rollout.phase == .rolledBack)
        case .pause:
            #expect(limit.rollout.phase == .paused)
            driver.command(.resume(actor: "oncall"))
            for _ in 0..<4 { driver.tick(["error-rate": 0]) }
            #expect(driver.rollout.phase == .progressing)  // 50 s held: 10 s before the no-data, 40 s after
            driver.tick(["error-rate": 0])
            #expect(driver.rollout.phase == .promoting)
        }
        #expect(driver.allEvents.contains(.promoting) == (action == .pause))
        #expect(!driver.allEvents.contains(.promoted))
    }

    /// The reported case in a middle stage: with `onNoData: rollback`, blind ticks before the limit moved the weight
    /// on (10 → 50 %). Now the weight stays until data comes back, and the limit rolls back.
    @Test func blindTicksNeverMoveTheWeightOn() {
        let strategy = Fixture.strategy(
            stages: [
                Stage(name: "canary", weight: 10, hold: .seconds(30)),
                Stage(name: "half", weight: 50, hold: .seconds(30)),
                Stage(name: "full", weight: 100),
            ], noDataLimit: 5, onNoData: .rollback)
        var driver = Driver(strategy: strategy)
        driver.confirmFirstStage()
        driver.tick(["error-rate": 0])
        for _ in 0..<4 { driver.tick(["error-rate": nil]) }
        #expect(driver.rollout.stageIndex == 0)
        #expect(driver.rollout.phase == .progressing)
        #expect(!driver.decisions.flatMap(\.effects).contains(.deployCanary(version: "v2", weight: 50)))
        let limit = driver.tick(["error-rate": nil])
        #expect(limit.rollout.rollbackCause == .noData(check: "error-rate"))
        driver.tick()
        #expect(driver.world.routerWeight == 0)
        #expect(driver.rollout.phase == .rolledBack)
    }

    /// The reported case after a resume: the hold's wall time had passed while paused, and the stage ended 0.8 s
    /// after `resume` on one sample. Hold held before the pause still counts; the paused time does not.
    @Test func pausedTimeDoesNotCountAndAResumeDoesNotEndTheStageOnOneSample() {
        var driver = Driver(strategy: Fixture.strategy(noDataLimit: 2, onNoData: .pause))
        driver.confirmFirstStage()
        driver.tick(["error-rate": 0])
        driver.tick(["error-rate": 0])
        driver.tick(["error-rate": nil])
        driver.tick(["error-rate": nil])
        #expect(driver.rollout.pause == .noData(check: "error-rate"))
        for _ in 0..<10 { driver.tick(["error-rate": 0]) }  // data is back, but paused: the hold waits
        #expect(driver.rollout.holdProgress?.held == .seconds(20))
        driver.now = driver.now + .seconds(3)
        driver.command(.resume(actor: "oncall"))
        let first = driver.tick(by: .milliseconds(800), ["error-rate": 0])
        #expect(!first.events.contains { $0.type == .stageCompleted })
        #expect(first.rollout.holdProgress?.held == .milliseconds(20_800))
        for _ in 0..<3 { driver.tick(["error-rate": 0]) }
        #expect(driver.rollout.stageIndex == 0)
        let ended = driver.tick(["error-rate": 0])
        #expect(ended.events.map(\.type) == [.stageCompleted])
    }

    /// A controller that was away (or a stalled tick) comes back to one pass: it vouches for one interval only.
    @Test func aGapInSamplingIsHeldForOneIntervalOnly() {
        var driver = Fixture.driverWithFirstStageConfirmed()
        driver.tick(["error-rate": 0])
        driver.tick(after: 700, ["error-rate": 0])
        #expect(driver.rollout.stageIndex == 0)
        #expect(driver.rollout.holdProgress?.held == .seconds(20))
        #expect(driver.rollout.holdRemaining(in: driver.strategy) == .seconds(40))
    }

    /// A rollout stored before holds were counted has no `holdProgress`: it decodes, and its hold counts from its
    /// last decision (never from the stage's start, which is what let no-data time through).
    @Test func aRolloutStoredBeforeHoldsWereCountedCountsFromItsLastDecision() throws {
        var driver = Fixture.driverWithFirstStageConfirmed(noDataLimit: 10)
        for _ in 0..<5 { driver.tick(["error-rate": nil]) }
        var object = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(driver.rollout)) as? [String: Any])
        #expect(object.removeValue(forKey: "holdProgress") != nil)
        let old = try JSONDecoder().decode(Rollout.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(old.holdProgress == nil)
        #expect(old.holdRemaining(in: driver.strategy) == .seconds(60))
        let now = driver.now + .seconds(10)
        let d = decide(
            old, strategy: driver.strategy, input: Fixture.observed(["error-rate": 0], router: 5, at: now), now: now)
        #expect(d.rollout.stageIndex == 0)
        #expect(d.rollout.holdProgress == HoldProgress(heldMilliseconds: 10_000, countedUntil: now))
    }
}
