import Testing

@testable import SluiceCore

/// Analysis rules of strategy-v1.md: streaks, limits, no-data, and what ends a stage.
@Suite struct DecideAnalysisTests {
    @Test(arguments: [(1, 1, true), (2, 1, false), (2, 2, true), (3, 2, false), (3, 3, true)])
    func failureLimitConsecutiveBreachesRollBack(limit: Int, breaches: Int, rollsBack: Bool) {
        var driver = Driver(strategy: Fixture.strategy(failureLimit: limit))
        driver.confirmFirstStage()
        for _ in 0..<breaches { driver.tick(["error-rate": 0.2]) }
        #expect(driver.rollout.phase == (rollsBack ? .rollingBack : .progressing))
        #expect(driver.rollout.checks["error-rate"]?.consecutiveBreaches == breaches)
        // One CheckBreached when the streak starts, not one per sample.
        #expect(driver.allEvents.filter { $0 == .checkBreached }.count == 1)
    }

    @Test func aPassEndsTheBreachStreak() {
        var driver = Driver(strategy: Fixture.strategy(failureLimit: 2))
        driver.confirmFirstStage()
        driver.tick(["error-rate": 0.2])
        let recovered = driver.tick(["error-rate": 0.001])
        #expect(recovered.events.map(\.type) == [.checkRecovered])
        #expect(recovered.events.first?.data["after"] == "breach")
        driver.tick(["error-rate": 0.2])
        #expect(driver.rollout.phase == .progressing)
        #expect(driver.rollout.checks["error-rate"]?.consecutiveBreaches == 1)
    }

    @Test func breachWithAutomaticRollbackOffPausesAndPausesAgainAfterResume() {
        var driver = Driver(strategy: Fixture.strategy(automatic: false))
        driver.confirmFirstStage()
        let d = driver.tick(["error-rate": 0.2])
        #expect(d.effects.isEmpty)
        #expect(d.events.map(\.type) == [.checkBreached, .paused])
        #expect(d.rollout.phase == .paused)
        #expect(d.rollout.pause == .breach(check: "error-rate"))
        #expect(d.rollout.desiredWeight == 5)

        let resumed = driver.command(.resume(actor: "oncall"))
        #expect(resumed.rollout.phase == .progressing)
        #expect(resumed.events.first?.message.contains("open breach streak") == true)
        let again = driver.tick(["error-rate": 0.3])
        #expect(again.rollout.phase == .paused)
        #expect(again.events.map(\.type) == [.paused])
    }

    @Test func breachesKeepCountingWhilePausedAndStillRollBack() {
        var driver = Driver(strategy: Fixture.strategy(failureLimit: 2))
        driver.confirmFirstStage()
        driver.command(.pause(actor: "oncall"))
        driver.tick(["error-rate": 0.2])
        #expect(driver.rollout.phase == .paused)
        let d = driver.tick(["error-rate": 0.2])
        #expect(d.rollout.phase == .rollingBack)
        #expect(d.effects.first == .setWeight(0))
        #expect(d.events.last?.data["from"] == "Paused")
    }

    @Test(arguments: [NoDataAction.pause, .rollback])
    func noDataLimitAppliesOnNoData(action: NoDataAction) {
        var driver = Driver(strategy: Fixture.strategy(noDataLimit: 3, onNoData: action))
        driver.confirmFirstStage()
        let first = driver.tick(["error-rate": nil])
        #expect(first.events.map(\.type) == [.checkNoData])
        #expect(first.events.first?.data["reason"] == "empty result")
        let second = driver.tick(["error-rate": nil])
        #expect(second.events.isEmpty)  // same reason: no event per routine sample
        let third = driver.tick(["error-rate": nil])
        switch action {
        case .pause:
            #expect(third.rollout.phase == .paused)
            #expect(third.rollout.pause == .noData(check: "error-rate"))
            #expect(third.effects.isEmpty)
        case .rollback:
            #expect(third.rollout.phase == .rollingBack)
            #expect(third.rollout.rollbackCause == .noData(check: "error-rate"))
            #expect(third.effects.first == .setWeight(0))
        }
    }

    @Test func aNewNoDataReasonIsReported() {
        var driver = Driver(strategy: Fixture.strategy(noDataLimit: 10))
        driver.confirmFirstStage()
        driver.tick(["error-rate": nil])
        driver.now = driver.now + .seconds(10)
        let d = decide(
            driver.rollout, strategy: driver.strategy,
            input: .observed(
                Observations(
                    samples: ["error-rate": Fixture.sample("error-rate", nil, at: driver.now, reason: "timeout")],
                    routerWeight: 5, canary: .ready)),
            now: driver.now)
        #expect(d.events.map(\.type) == [.checkNoData])
        #expect(d.events.first?.data["reason"] == "timeout")
        #expect(d.rollout.checks["error-rate"]?.consecutiveNoData == 2)
    }

    /// No-data never counts as a pass, even when a provider claims `.pass` without a usable value.
    @Test(arguments: [nil, Double.nan, .infinity, -.infinity])
    func noDataNeverCountsAsAPass(value: Double?) {
        var driver = Driver(strategy: Fixture.strategy(noDataLimit: 100))
        driver.confirmFirstStage()
        for _ in 0..<20 {
            driver.now = driver.now + .seconds(10)
            let claimed = Sample(check: "error-rate", time: driver.now, value: value, verdict: .pass)
            let d = decide(
                driver.rollout, strategy: driver.strategy,
                input: .observed(Observations(samples: ["error-rate": claimed], routerWeight: 5, canary: .ready)),
                now: driver.now)
            driver.rollout = d.rollout
        }
        #expect(driver.rollout.stageIndex == 0)
        #expect(driver.rollout.checks["error-rate"]?.passedInStage == false)
        #expect(driver.rollout.checks["error-rate"]?.consecutiveNoData == 20)
        #expect(driver.rollout.checks["error-rate"]?.lastSample?.verdict == .noData)
    }

    /// (seconds since the hold started, a pass seen, open breach streak, router reads back) -> stage ends.
    @Test(arguments: [
        (60, true, false, true, true),
        (59, true, false, true, false),
        (60, false, false, true, false),
        (60, true, true, true, false),
        (60, true, false, false, false),
        (600, true, false, true, true),
    ])
    func stageEndsOnlyWithHoldEvidenceAndReadBack(
        elapsed: Int, passed: Bool, openBreach: Bool, readBack: Bool, ends: Bool
    ) {
        let strategy = Fixture.strategy(failureLimit: 3)
        let started = Fixture.at(0)
        let rollout = Rollout(
            id: "r-1", strategy: strategy.key, strategyRevision: 1, version: "v2", phase: .progressing,
            stageStartedAt: started, desiredWeight: 5,
            checks: ["error-rate": CheckState(consecutiveBreaches: openBreach ? 1 : 0, passedInStage: passed)],
            createdAt: started)
        let now = Fixture.at(elapsed)
        let d = decide(
            rollout, strategy: strategy, input: Fixture.observed(router: readBack ? 5 : 7, at: now), now: now)
        #expect(d.events.contains { $0.type == .stageCompleted } == ends)
        #expect(d.rollout.stageIndex == (ends ? 1 : 0))
        if ends {
            #expect(d.effects == [.deployCanary(version: "v2", weight: 25)])
            #expect(d.rollout.checks == ["error-rate": CheckState(), "latency": CheckState()])
            #expect(d.rollout.stageStartedAt == nil)
        }
    }

    @Test func aPassBeforeTheWeightIsConfirmedDoesNotCount() {
        var driver = Driver(strategy: Fixture.strategy())
        driver.tick()  // canary ready: setWeight(5) emitted, not yet read back
        let d = driver.tick(["error-rate": 0])  // this tick reads back 5; its sample predates that
        #expect(d.rollout.stageStartedAt == driver.now)
        #expect(d.rollout.checks["error-rate"]?.passedInStage == false)
    }

    @Test func stageOnlyChecksMustPassInTheirStage() {
        var driver = Driver(strategy: Fixture.strategy())
        driver.passUntil(.progressing)
        for _ in 0..<12 where driver.rollout.stageIndex == 0 { driver.tick(["error-rate": 0]) }
        #expect(driver.rollout.stageIndex == 1)
        for _ in 0..<20 { driver.tick(["error-rate": 0]) }  // latency never sampled
        #expect(driver.rollout.stageIndex == 1)
        #expect(driver.rollout.checks["latency"]?.passedInStage == false)
        driver.tick(["error-rate": 0, "latency": 0.1])
        #expect(driver.rollout.stageIndex == 2)
        #expect(driver.rollout.checks.keys.sorted() == ["error-rate"])
    }

    @Test func theSameSampleTwiceCountsOnce() {
        var driver = Driver(strategy: Fixture.strategy(failureLimit: 2))
        driver.confirmFirstStage()
        let input = Fixture.observed(["error-rate": 0.5], router: 5, at: driver.now + .seconds(10))
        let once = decide(driver.rollout, strategy: driver.strategy, input: input, now: driver.now + .seconds(10))
        let twice = decide(once.rollout, strategy: driver.strategy, input: input, now: driver.now + .seconds(11))
        #expect(twice.rollout.checks["error-rate"]?.consecutiveBreaches == 1)
        #expect(twice.rollout.phase == .progressing)
    }
}
