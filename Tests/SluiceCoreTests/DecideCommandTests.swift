import Testing

@testable import SluiceCore

/// Commands of docs/api.md, rollback from every phase, promotion, drift and effect failures.
@Suite struct DecideCommandTests {
    /// A driver whose rollout is in `phase`, reached through real decisions.
    static func driver(in phase: Phase, strategy: Strategy = Fixture.strategy()) -> Driver {
        var driver = Driver(strategy: strategy)
        switch phase {
        case .pending: break
        case .progressing: driver.confirmFirstStage()
        case .paused:
            driver.confirmFirstStage()
            driver.command(.pause(actor: "oncall"))
        case .promoting: driver.passUntil(.promoting)
        case .baking:
            driver.strategy.bake = Bake(duration: .seconds(60))
            driver.passUntil(.baking)
        case .rollingBack:
            driver.confirmFirstStage()
            driver.command(.rollback(actor: "oncall", reason: "setup"))
        case .succeeded, .rolledBack, .failed:
            driver.passUntil(.progressing)
            if phase == .succeeded { driver.passUntil(.succeeded) }
            if phase == .rolledBack {
                driver.command(.rollback(actor: "oncall", reason: "setup"))
                driver.tick()
            }
            if phase == .failed {
                let d = decide(
                    driver.rollout, strategy: driver.strategy,
                    input: Fixture.observed(router: 5, canary: .failed("OOMKilled"), at: driver.now), now: driver.now)
                driver.rollout = d.rollout
                driver.world.run(d.effects)
                driver.tick(after: 10)
            }
        }
        #expect(driver.rollout.phase == phase)
        return driver
    }

    @Test(arguments: [Phase.pending, .progressing, .paused, .promoting, .baking])
    func rollbackFromEveryActivePhasePutsTrafficToZeroFirst(phase: Phase) {
        // A bake on an upstreams target: a Deployment's bake first undoes its promotion, traffic first too
        // (DecideBakeTests.aManualRollbackDuringADeploymentsBakeUndoesThePromotionToo).
        let upstreams = Fixture.strategy(target: .upstreams(stable: ["a:1"], canary: ["b:1"]))
        var driver = phase == .baking ? Self.driver(in: phase, strategy: upstreams) : Self.driver(in: phase)
        let d = driver.command(.rollback(actor: "oncall", reason: "pager fired"))
        #expect(d.rejection == nil)
        #expect(d.effects == [.setWeight(0), .scaleDownCanary, .finalizeTraffic])
        #expect(d.rollout.phase == .rollingBack)
        #expect(d.rollout.pause == nil)
        #expect(d.rollout.rollbackCause == .command(actor: "oncall", reason: "pager fired"))
        let event = d.events.first
        #expect(event?.type == .rollbackStarted)
        #expect(event?.actor == "oncall")
        #expect(event?.reason == "Manual")
        #expect(event?.data["from"] == .string(phase.rawValue))
        #expect(event?.weight == 0)
        driver.tick()
        #expect(driver.rollout.phase == .rolledBack)
        #expect(driver.decisions.last?.events.map(\.type) == [.rolledBack])
    }

    @Test func rollbackIsRefusedOncePromotionIsConfirmed() {
        var driver = Self.driver(in: .promoting)
        let confirmed = driver.tick()
        #expect(confirmed.events.map(\.type) == [.stablePromoted])
        #expect(confirmed.effects == [.setWeight(0), .scaleDownCanary, .finalizeTraffic])
        #expect(driver.rollout.phase == .promoting)
        let d = driver.command(.rollback(actor: "oncall", reason: "too late"))
        #expect(d.rejection?.contains("already the stable version") == true)
        #expect(d.rollout == confirmed.rollout)
        driver.tick()
        #expect(driver.rollout.phase == .succeeded)
    }

    /// While promoteStable is retried, the canary serves 100 %: a breach still rolls back.
    @Test func aBreachWhilePromotingRollsBackUntilPromotionIsConfirmed() {
        let driver = Self.driver(in: .promoting)
        #expect(driver.rollout.checksToSample(in: driver.strategy).map(\.name) == ["error-rate"])
        let now = driver.now + .seconds(10)
        let failure = EffectFailure(effect: .promoteStable(version: "v2"), message: "timeout")
        let d = decide(
            driver.rollout, strategy: driver.strategy,
            input: Fixture.observed(["error-rate": 0.5], router: 100, at: now, failed: [failure]), now: now)
        #expect(d.rollout.phase == .rollingBack)
        #expect(d.effects.first == .setWeight(0))
        #expect(d.events.map(\.type) == [.effectFailed, .checkBreached, .rollbackStarted])
    }

    @Test func promoteStableIsRetriedWhileAnyEffectFailed() {
        let driver = Self.driver(in: .promoting)
        let failure = EffectFailure(effect: .promoteStable(version: "v2"), message: "409 Conflict")
        let now = driver.now + .seconds(10)
        let d = decide(
            driver.rollout, strategy: driver.strategy, input: Fixture.observed(router: 100, at: now, failed: [failure]),
            now: now)
        #expect(d.effects == [.promoteStable(version: "v2")])
        #expect(d.events.map(\.type) == [.effectFailed])
        #expect(d.rollout.stablePromotedAt == nil)
        // The same failure again is not a new event (no flood), and it is still retried.
        let again = decide(
            d.rollout, strategy: driver.strategy,
            input: Fixture.observed(router: 100, at: now + .seconds(10), failed: [failure]), now: now + .seconds(10))
        #expect(again.events.isEmpty)
        #expect(again.effects == [.promoteStable(version: "v2")])
    }

    @Test(arguments: [
        (Phase.pending, Command.resume(actor: "a"), "not Paused"),
        (.progressing, .resume(actor: "a"), "not Paused"),
        (.pending, .promote(actor: "a", full: false), "not ready yet"),
        (.promoting, .promote(actor: "a", full: true), "already Promoting"),
        (.rollingBack, .promote(actor: "a", full: false), "cannot be promoted"),
        (.rollingBack, .rollback(actor: "a", reason: "again"), "already rolling back"),
        (.paused, .pause(actor: "a"), "only a Pending or Progressing"),
        (.promoting, .pause(actor: "a"), "only a Pending or Progressing"),
        (.succeeded, .rollback(actor: "a", reason: "x"), "never changes"),
        (.rolledBack, .resume(actor: "a"), "never changes"),
        (.failed, .promote(actor: "a", full: false), "never changes"),
    ])
    func commandsThatMakeNoSenseAreRejected(phase: Phase, command: Command, expected: String) {
        let driver = Self.driver(in: phase)
        let d = decide(driver.rollout, strategy: driver.strategy, input: .command(command), now: driver.now)
        #expect(d.rejection?.contains(expected) == true, "\(d.rejection ?? "accepted")")
        #expect(d.rollout == driver.rollout)
        #expect(d.effects.isEmpty && d.events.isEmpty)
    }

    @Test func pauseStopsStageProgressionAndResumeRestartsIt() {
        var driver = Self.driver(in: .progressing)
        let paused = driver.command(.pause(actor: "bob"))
        #expect(paused.events.map(\.type) == [.paused])
        #expect(paused.rollout.pause == .manual(actor: "bob"))
        for _ in 0..<10 { driver.tick(["error-rate": 0]) }
        #expect(driver.rollout.stageIndex == 0)
        #expect(driver.rollout.phase == .paused)
        let resumed = driver.command(.resume(actor: "bob"))
        #expect(resumed.events.map(\.type) == [.resumed])
        #expect(resumed.events.first?.actor == "bob")
        // The 100 s paused do not count toward the 60 s hold: it is held from the resume on.
        for _ in 0..<5 { driver.tick(["error-rate": 0]) }
        #expect(driver.rollout.stageIndex == 0)
        driver.tick(["error-rate": 0])
        #expect(driver.rollout.stageIndex == 1)
    }

    @Test func pausedBeforeTrafficKeepsTheCanaryAtZero() {
        var driver = Self.driver(in: .pending)
        driver.command(.pause(actor: "bob"))
        let d = driver.tick()
        #expect(d.rollout.desiredWeight == 0)
        #expect(d.effects.isEmpty)
        driver.command(.resume(actor: "bob"))
        #expect(driver.rollout.phase == .pending)
        let shifted = driver.tick()
        #expect(shifted.effects == [.setWeight(5)])
        #expect(shifted.rollout.phase == .progressing)
    }

    @Test func promoteWaivesTheHoldButNeverTheEvidence() {
        var driver = Self.driver(in: .progressing)
        let d = driver.command(.promote(actor: "rel", full: false))
        #expect(d.events.map(\.type) == [.promotionRequested])
        #expect(d.events.first?.data["waitingFor"] == .array(["error-rate (no pass yet in this stage)"]))
        #expect(d.rollout.holdWaivedBy == "rel")
        driver.tick(["error-rate": nil])
        #expect(driver.rollout.stageIndex == 0)
        let ended = driver.tick(["error-rate": 0])
        #expect(ended.events.map(\.type) == [.checkRecovered, .stageCompleted])
        #expect(ended.events.last?.data["holdWaivedBy"] == "rel")
        #expect(ended.rollout.stageIndex == 1)
        #expect(ended.rollout.holdWaivedBy == nil)  // the next stage holds again
    }

    @Test func promoteFullGoesStraightToTheLastStage() {
        var driver = Self.driver(in: .progressing)
        driver.command(.promote(actor: "rel", full: true))
        let ended = driver.tick(["error-rate": 0])
        #expect(ended.rollout.stageIndex == 2)
        #expect(ended.effects == [.deployCanary(version: "v2", weight: 100)])
        driver.tick()  // canary ready for 100 %
        #expect(driver.world.routerWeight == 100)
        driver.tick()  // read back: the 100 % stage starts, its hold waived
        let promoting = driver.tick(["error-rate": 0])
        #expect(promoting.rollout.phase == .promoting)
        #expect(promoting.effects == [.promoteStable(version: "v2")])
    }

    @Test func pauseStageWaitsForPromoteNotResume() {
        let strategy = Fixture.strategy(stages: [
            Stage(name: "canary", weight: 10, pause: true),
            Stage(name: "full", weight: 100, hold: .seconds(30)),
        ])
        var driver = Driver(strategy: strategy)
        driver.tick()
        let gate = driver.tick(["error-rate": 0])
        #expect(gate.events.map(\.type) == [.trafficShifted, .paused])
        #expect(gate.rollout.pause == .stageGate)
        for _ in 0..<30 { driver.tick(["error-rate": 0]) }
        #expect(driver.rollout.stageIndex == 0)
        let resume = driver.command(.resume(actor: "bob"))
        #expect(resume.rejection?.contains("sluice promote") == true)
        let promote = driver.command(.promote(actor: "bob", full: false))
        #expect(promote.rollout.phase == .progressing)
        driver.tick(["error-rate": 0])
        #expect(driver.rollout.stageIndex == 1)
    }

    /// The rollback says what it is for; `Superseded` is written by the new rollout once it exists (it may not:
    /// the rollback may never be confirmed).
    @Test func supersedeRollsBackAndSaysBy() {
        var driver = Self.driver(in: .progressing)
        let d = driver.command(.supersede(actor: "ci", by: "r-2"))
        #expect(d.effects.first == .setWeight(0))
        #expect(d.events.map(\.type) == [.rollbackStarted])
        #expect(d.events[0].reason == "Superseded" && d.events[0].data["supersededBy"] == "r-2")
        #expect(d.rollout.rollbackCause == .superseded(actor: "ci", by: "r-2"))
    }

    /// `rollout start --supersede` while the active rollout is already rolling back just waits for it.
    @Test func supersedeWhileRollingBackIsAcceptedAndRecorded() {
        var driver = Self.driver(in: .rollingBack)
        let d = driver.command(.supersede(actor: "ci", by: "r-2"))
        #expect(d.rejection == nil)
        #expect(d.effects == [.setWeight(0), .scaleDownCanary, .finalizeTraffic])
        #expect(d.events.isEmpty)
        #expect(d.rollout.rollbackCause == .command(actor: "oncall", reason: "setup"))
        driver.tick()
        #expect(driver.rollout.phase == .rolledBack)
    }

    @Test func supersedeIsRefusedOncePromotionIsConfirmed() {
        var driver = Self.driver(in: .promoting)
        driver.tick()
        let d = driver.command(.supersede(actor: "ci", by: "r-2"))
        #expect(d.rejection?.contains("once it has Succeeded") == true)
    }

    @Test func driftIsDetectedOnceCorrectedAndReported() {
        let driver = Self.driver(in: .progressing)
        let strategy = driver.strategy
        var now = driver.now + .seconds(10)
        let drifted = decide(driver.rollout, strategy: strategy, input: Fixture.observed(router: 40, at: now), now: now)
        #expect(drifted.events.map(\.type) == [.driftDetected])
        #expect(drifted.events.first?.data["actual"] == 40)
        #expect(drifted.effects == [.setWeight(5)])
        now = now + .seconds(10)
        let still = decide(drifted.rollout, strategy: strategy, input: Fixture.observed(router: 40, at: now), now: now)
        #expect(still.events.isEmpty)
        #expect(still.effects == [.setWeight(5)])
        now = now + .seconds(10)
        let fixed = decide(still.rollout, strategy: strategy, input: Fixture.observed(router: 5, at: now), now: now)
        #expect(fixed.events.map(\.type) == [.driftCorrected])
        #expect(fixed.effects.isEmpty)
        #expect(fixed.rollout.driftDetectedAt == nil)
    }

    @Test func upstreamsPromotionSwapsThePools() {
        let strategy = Fixture.strategy(target: .upstreams(stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80"]))
        var driver = Driver(strategy: strategy)
        #expect(driver.rollout.pools == Pools(stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80"]))
        driver.passUntil(.succeeded)
        #expect(driver.rollout.pools == Pools(stable: ["10.0.0.2:80"], canary: ["10.0.0.1:80"]))
        let promoted = driver.decisions.flatMap(\.events).first { $0.type == .promoted }
        #expect(promoted?.data["stable"] == .array(["10.0.0.2:80"]))
        #expect(promoted?.data["poolsSwapped"] == true)
    }

    @Test func eventsNeverGoBackInTimeWhenTheClockDoes() {
        var driver = Self.driver(in: .progressing)
        let last = driver.rollout.updatedAt
        driver.now = last + .seconds(-30)
        let d = driver.command(.pause(actor: "bob"))
        #expect(d.events.first?.time == last)
        #expect(d.rollout.updatedAt == last)
    }
}
