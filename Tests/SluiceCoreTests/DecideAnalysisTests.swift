import Testing

@testable import SluiceCore

/// Analysis rules of docs/strategy.md: streaks, limits, no-data, and what ends a stage.
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

    /// A flapping provider's text varies ("900 ms", "901 ms", random bytes): the streak is told once when it starts
    /// and once, with its length, when it ends; never per sample, whatever the text.
    @Test func aNoDataStreakIsToldOnceWhenItStartsAndCountedWhenItEnds() {
        var driver = Fixture.driverWithFirstStageConfirmed(noDataLimit: 10)
        let reasons = ["timeout after 900 ms", "timeout after 901 ms", "garbage \u{7}\u{1B}[2J\(junk(300))"]
        var events: [Event] = []
        for reason in reasons {
            events += driver.tick(by: .seconds(10), ["error-rate": nil], reason: reason).events
        }
        #expect(events.map(\.type) == [.checkNoData])
        #expect(events.first?.data["reason"] == "timeout after 900 ms")
        #expect(events.first?.data["noDataLimit"] == 10)
        #expect(driver.rollout.checks["error-rate"]?.consecutiveNoData == 3)

        let recovered = driver.tick(["error-rate": 0])
        #expect(recovered.events.map(\.type) == [.checkRecovered])
        #expect(recovered.events.first?.data["after"] == "no-data")
        #expect(recovered.events.first?.data["noDataSamples"] == 3)
        #expect(recovered.events.first?.message == "error-rate passes again (0.0) after 3 sample(s) without data")
        // A new streak is a new event.
        #expect(driver.tick(["error-rate": nil]).events.map(\.type) == [.checkNoData])
    }

    /// Data that comes back still breaching ends the no-data streak too, even inside an open breach streak.
    @Test func dataComingBackStillBreachingIsToldWithTheNoDataCount() {
        var driver = Fixture.driverWithFirstStageConfirmed(failureLimit: 5, noDataLimit: 10)
        #expect(driver.tick(["error-rate": 0.5]).events.map(\.type) == [.checkBreached])
        #expect(driver.tick(["error-rate": nil]).events.map(\.type) == [.checkNoData])
        #expect(driver.tick(["error-rate": nil]).events.isEmpty)
        let back = driver.tick(["error-rate": 0.5])
        #expect(back.events.map(\.type) == [.checkBreached])
        #expect(back.events.first?.data["noDataSamples"] == 2)
        #expect(back.events.first?.data["consecutiveBreaches"] == 2)
        #expect(driver.tick(["error-rate": 0.5]).events.isEmpty)  // the breach streak goes on quietly
        #expect(driver.rollout.checks["error-rate"]?.consecutiveBreaches == 3)
    }

    /// Provider text reaches events and the stored state cut to 200 characters, control characters escaped.
    @Test func providerTextIsCutAndEscapedInEventsAndState() {
        var driver = Fixture.driverWithFirstStageConfirmed(noDataLimit: 10)
        let raw = "\u{1B}[31mquery failed\n\r" + junk(600)
        let d = driver.tick(by: .seconds(10), ["error-rate": nil], reason: raw)
        let reason = sanitizedExcerpt(raw)
        #expect(d.events.first?.data["reason"] == .string(reason))
        #expect(reason.unicodeScalars.count <= 200)
        #expect(reason.hasPrefix("\\u001B[31mquery failed\\n\\r"))
        #expect(reason.contains("…"))
        #expect(!reason.unicodeScalars.contains { $0.properties.generalCategory == .control })
        #expect(d.events.first?.message == "error-rate has no data: \(reason)")
        #expect(driver.rollout.checks["error-rate"]?.lastSample?.reason == reason)

        let failure = EffectFailure(effect: .setWeight(5), message: "503\n" + junk(500))
        let now = driver.now + .seconds(10)
        let failed = decide(
            driver.rollout, strategy: driver.strategy, input: Fixture.observed(router: 5, at: now, failed: [failure]),
            now: now)
        #expect(failed.events.first?.data["error"] == .string(sanitizedExcerpt(failure.message)))
    }

    /// Random bytes with control characters, as a misbehaving provider answers.
    private func junk(_ count: Int) -> String {
        String((0..<count).map { Character(Unicode.Scalar(UInt8(($0 * 37 + 11) % 128))) })
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
        // The hold is backed only by ticks where every check of the stage, latency too, passes.
        #expect(driver.rollout.holdProgress?.held == .zero)
        for _ in 0..<5 { driver.tick(["error-rate": 0, "latency": 0.1]) }
        #expect(driver.rollout.stageIndex == 1)
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
