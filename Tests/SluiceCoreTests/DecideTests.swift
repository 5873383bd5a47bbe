import Foundation
import Testing

@testable import SluiceCore

/// Tier 1: a state and observations at a given `now` in, the exact new state, effects and events out.
@Suite struct DecideTests {
    let strategy = Fixture.strategy()

    @Test func startAsksForCanaryCapacityBeforeAnyTraffic() {
        let d = Rollout.start(
            id: "r-1", strategy: strategy, revision: 3, version: "v2", actor: "ci", pools: nil, now: Fixture.t0)
        #expect(d.rejection == nil)
        #expect(d.effects == [.deployCanary(version: "v2", weight: 5)])
        #expect(d.events.map(\.type) == [.rolloutStarted])
        #expect(d.events.first?.actor == "ci")
        let expected = Rollout(
            id: "r-1", strategy: StrategyKey(namespace: "shop", name: "checkout"), strategyRevision: 3,
            version: "v2", phase: .pending, checks: ["error-rate": CheckState()], createdAt: Fixture.t0,
            canaryRequestedAt: Fixture.t0)
        #expect(d.rollout == expected)
    }

    @Test func readyCanaryGetsTheFirstStageWeightAndTheHoldStartsOnReadBack() {
        let started = Rollout.start(
            id: "r-1", strategy: strategy, revision: 1, version: "v2", actor: "ci", pools: nil, now: Fixture.t0)
        let ready = decide(
            started.rollout, strategy: strategy, input: Fixture.observed(router: 0, at: Fixture.at(10)),
            now: Fixture.at(10))
        #expect(ready.effects == [.setWeight(5)])
        #expect(ready.events.map(\.type) == [.canaryDeployed, .stageStarted])
        #expect(ready.rollout.phase == .progressing)
        #expect(ready.rollout.desiredWeight == 5)
        #expect(ready.rollout.stageStartedAt == nil)

        // The router has not applied it yet: re-emit, the hold does not start on hope.
        let notYet = decide(
            ready.rollout, strategy: strategy, input: Fixture.observed(router: 0, at: Fixture.at(20)),
            now: Fixture.at(20))
        #expect(notYet.effects == [.setWeight(5)])
        #expect(notYet.events.isEmpty)
        #expect(notYet.rollout.stageStartedAt == nil)

        let confirmed = decide(
            notYet.rollout, strategy: strategy, input: Fixture.observed(router: 5, at: Fixture.at(30)),
            now: Fixture.at(30))
        #expect(confirmed.effects == [])
        #expect(confirmed.events.map(\.type) == [.trafficShifted])
        #expect(confirmed.rollout.stageStartedAt == Fixture.at(30))
        #expect(confirmed.rollout.updatedAt == Fixture.at(30))
    }

    @Test func canaryNotReadyIsRedeployedUntilTheProgressDeadlineThenFails() {
        let started = Rollout.start(
            id: "r-1", strategy: strategy, revision: 1, version: "v2", actor: "ci", pools: nil, now: Fixture.t0)
        let waiting = decide(
            started.rollout, strategy: strategy,
            input: Fixture.observed(router: 0, canary: .progressing("pulling image"), at: Fixture.at(599)),
            now: Fixture.at(599))
        #expect(waiting.effects == [.deployCanary(version: "v2", weight: 5)])
        #expect(waiting.rollout.phase == .pending)

        let late = decide(
            waiting.rollout, strategy: strategy,
            input: Fixture.observed(router: 0, canary: .progressing("pulling image"), at: Fixture.at(600)),
            now: Fixture.at(600))
        #expect(late.effects == [.setWeight(0), .scaleDownCanary, .finalizeTraffic])
        #expect(late.rollout.phase == .rollingBack)
        #expect(late.rollout.rollbackCause == .progressDeadline(reason: "pulling image"))
        #expect(late.events.map(\.type) == [.rollbackStarted])

        let done = decide(
            late.rollout, strategy: strategy, input: Fixture.observed(router: 0, at: Fixture.at(610)),
            now: Fixture.at(610))
        #expect(done.rollout.phase == .failed)
        #expect(done.events.map(\.type) == [.failed])
        #expect(done.events.first?.reason == "ProgressDeadlineExceeded")
        #expect(done.effects == [])
    }

    @Test func failedCanaryPutsTrafficToZeroFirstAndEndsFailed() {
        var driver = Driver(strategy: strategy)
        driver.passUntil(.progressing)
        driver.tick()  // weight confirmed
        let failed = driver.rollout
        let d = decide(
            failed, strategy: strategy,
            input: Fixture.observed(router: 5, canary: .failed("ImagePullBackOff"), at: Fixture.at(100)),
            now: Fixture.at(100))
        #expect(d.effects.first == .setWeight(0))
        #expect(d.rollout.phase == .rollingBack)
        #expect(d.rollout.desiredWeight == 0)
        #expect(d.rollout.endReason == "canary failed: ImagePullBackOff")
        let end = decide(
            d.rollout, strategy: strategy, input: Fixture.observed(router: 0, at: Fixture.at(110)),
            now: Fixture.at(110))
        #expect(end.rollout.phase == .failed)
    }

    @Test func healthyRolloutWalksEveryStageAndSucceeds() {
        var driver = Driver(strategy: strategy)
        driver.passUntil(.succeeded)
        #expect(driver.rollout.phase == .succeeded)
        #expect(driver.world.stableVersion == "v2")
        #expect(driver.world.routerWeight == 0)
        #expect(driver.world.canaryScaledDown)
        #expect(
            driver.allEvents == [
                .rolloutStarted,
                .canaryDeployed, .stageStarted, .trafficShifted, .stageCompleted,
                .canaryDeployed, .stageStarted, .trafficShifted, .stageCompleted,
                .canaryDeployed, .stageStarted, .trafficShifted, .stageCompleted,
                .promoting, .stablePromoted, .promoted,
            ])
        let weights = driver.decisions.flatMap(\.effects).compactMap { e -> Int? in
            if case .setWeight(let w) = e { w } else { nil }
        }
        #expect(weights == [5, 25, 100, 0])
    }

    @Test func stageDoesNotEndBeforeItsHold() throws {
        var driver = Driver(strategy: strategy)
        driver.passUntil(.progressing)
        driver.tick(["error-rate": 0])  // router reads 5: the hold starts now
        let started = try #require(driver.rollout.stageStartedAt)
        for _ in 0..<5 { driver.tick(["error-rate": 0]) }  // 50 s
        #expect(driver.rollout.stageIndex == 0)
        driver.tick(after: 9, ["error-rate": 0])  // 59 s
        #expect(driver.rollout.stageIndex == 0)
        driver.tick(after: 1, ["error-rate": 0])  // 60 s
        #expect(driver.now - started == .seconds(60))
        #expect(driver.rollout.stageIndex == 1)
        #expect(driver.decisions.last?.effects == [.deployCanary(version: "v2", weight: 25)])
    }

    @Test func breachRollsBackWithTrafficToStableFirst() {
        var driver = Driver(strategy: strategy)
        driver.passUntil(.progressing)
        driver.tick(["error-rate": 0])
        let d = driver.tick(["error-rate": 0.5])
        #expect(d.effects == [.setWeight(0), .scaleDownCanary, .finalizeTraffic])
        #expect(d.events.map(\.type) == [.checkBreached, .rollbackStarted])
        #expect(d.events[0].data["value"] == 0.5)
        #expect(d.events[0].data["max"] == 0.01)
        #expect(d.rollout.rollbackCause == .breach(check: "error-rate"))
        let end = driver.tick()
        #expect(end.rollout.phase == .rolledBack)
        #expect(end.events.map(\.type) == [.rolledBack])
    }

    @Test func rollbackWaitsForTheRouterToReadBackZero() {
        var driver = Driver(strategy: strategy)
        driver.passUntil(.progressing)
        driver.tick()
        let d = driver.command(.rollback(actor: "alice", reason: "pager"))
        #expect(d.events.first?.actor == "alice")
        #expect(d.rollout.endReason == "pager")
        let stuck = decide(
            d.rollout, strategy: strategy, input: Fixture.observed(router: 5, at: driver.now + .seconds(10)),
            now: driver.now + .seconds(10))
        #expect(stuck.rollout.phase == .rollingBack)
        #expect(stuck.effects.first == .setWeight(0))
        let unknown = decide(
            stuck.rollout, strategy: strategy, input: Fixture.observed(router: nil, at: driver.now + .seconds(20)),
            now: driver.now + .seconds(20))
        #expect(unknown.rollout.phase == .rollingBack)
        let done = decide(
            unknown.rollout, strategy: strategy, input: Fixture.observed(router: 0, at: driver.now + .seconds(30)),
            now: driver.now + .seconds(30))
        #expect(done.rollout.phase == .rolledBack)
    }

    @Test func terminalRolloutNeverChanges() {
        var driver = Driver(strategy: strategy)
        driver.passUntil(.succeeded)
        let done = driver.rollout
        let d = decide(
            done, strategy: strategy, input: Fixture.observed(["error-rate": 9], router: 40, at: Fixture.at(99_999)),
            now: Fixture.at(99_999))
        #expect(d == Decision(rollout: done))
        let c = decide(
            done, strategy: strategy, input: .command(.rollback(actor: "bob", reason: "late")), now: Fixture.at(99_999))
        #expect(c.rollout == done)
        #expect(c.effects.isEmpty && c.events.isEmpty)
        #expect(c.rejection == "rollout r-1 is Succeeded; a finished rollout never changes")
    }

    /// A failed scale-up leaves the smaller canary reporting ready: that is no evidence of capacity.
    @Test func trafficWaitsForCapacityForTheStagesWeight() throws {
        var driver = Driver(strategy: strategy)
        driver.passUntil(.progressing)
        for _ in 0..<8 where driver.rollout.stageIndex == 0 { driver.tick(["error-rate": 0]) }
        #expect(driver.rollout.stageIndex == 1)
        #expect(driver.rollout.desiredWeight == 5)
        let now = driver.now + .seconds(10)
        let failure = EffectFailure(effect: .deployCanary(version: "v2", weight: 25), message: "503")
        let failed = decide(
            driver.rollout, strategy: strategy, input: Fixture.observed(router: 5, at: now, failed: [failure]), now: now
        )
        #expect(failed.effects == [.deployCanary(version: "v2", weight: 25)])
        #expect(failed.rollout.desiredWeight == 5)

        let small = decide(
            failed.rollout, strategy: strategy,
            input: .observed(Observations(routerWeight: 5, canary: .ready, canaryCapacity: 5)), now: now + .seconds(10))
        #expect(small.effects == [.deployCanary(version: "v2", weight: 25)])
        #expect(small.rollout.desiredWeight == 5)

        let enough = decide(
            small.rollout, strategy: strategy,
            input: .observed(Observations(routerWeight: 5, canary: .ready, canaryCapacity: 25)), now: now + .seconds(20)
        )
        #expect(enough.effects == [.setWeight(25)])
        #expect(enough.rollout.desiredWeight == 25)
    }

    @Test func checksAreSampledOnlyWhileTheCanaryHasTraffic() {
        var driver = Driver(strategy: strategy)
        #expect(driver.rollout.checksToSample(in: strategy).isEmpty)
        driver.passUntil(.progressing)
        #expect(driver.rollout.checksToSample(in: strategy).map(\.name) == ["error-rate"])
        for _ in 0..<8 where driver.rollout.desiredWeight != 25 { driver.tick(["error-rate": 0]) }
        #expect(driver.rollout.checksToSample(in: strategy).map(\.name) == ["error-rate", "latency"])
        driver.command(.rollback(actor: "a", reason: "b"))
        #expect(driver.rollout.checksToSample(in: strategy).isEmpty)
    }

    /// 10k rollouts x 2 checks every 10 s must not flood the log: routine samples emit nothing.
    @Test func routineSamplesEmitNoEvents() {
        let strategy = Fixture.strategy(
            stages: [Stage(name: "long", weight: 10, hold: .seconds(3600)), Stage(name: "full", weight: 100)],
            checks: [Fixture.errorRate, Fixture.availability], noDataLimit: 1000)
        var driver = Driver(strategy: strategy)
        driver.confirmFirstStage()
        let before = driver.decisions.count
        for _ in 0..<100 { driver.tick(["error-rate": 0, "availability": 1]) }
        for _ in 0..<100 { driver.tick(["error-rate": 0, "availability": nil]) }
        let events = driver.decisions[before...].flatMap(\.events).map(\.type)
        #expect(events == [.checkNoData])
        #expect(driver.decisions[before...].allSatisfy { $0.effects.isEmpty })
    }

    /// The store persists the state whole: every field survives JSON, and older rows without the newer
    /// optional fields still decode.
    @Test func rolloutStateRoundTripsThroughJSON() throws {
        var driver = Driver(strategy: Fixture.strategy(target: .upstreams(stable: ["a:1"], canary: ["b:1"])))
        driver.confirmFirstStage()
        driver.command(.promote(actor: "rel", full: true))
        driver.tick(["error-rate": nil])
        let state = driver.rollout
        let data = try JSONEncoder().encode(state)
        #expect(try JSONDecoder().decode(Rollout.self, from: data) == state)

        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in [
            "rollbackCause", "canaryRequestedAt", "holdWaivedBy", "driftDetectedAt", "stablePromotedAt",
            "failingEffects", "holdProgress",
        ] {
            object.removeValue(forKey: key)
        }
        let old = try JSONDecoder().decode(Rollout.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(old.holdWaivedBy == nil)
        #expect(old.holdProgress == nil)
        #expect(old.checks == state.checks)
    }
}
