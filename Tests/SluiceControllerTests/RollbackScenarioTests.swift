import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport
import Testing

@Suite struct RollbackScenarioTests {
    static let weights = [5, 25, 50, 100]

    @Test(arguments: 0..<4)
    func aBreachInAnyStageRollsBackWithTrafficFirst(stage: Int) async throws {
        let scenario = try await Scenario()
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        let breachingWeight = Self.weights[stage]
        let router = world.router
        world.metrics.answer { _ in router.current == breachingWeight ? .value(0.5) : .value(0.01) }
        let rollout = try await scenario.start()
        let final = try await scenario.tickUntilFinal(rollout.id)

        #expect(final.phase == .rolledBack)
        #expect(final.endReason?.contains("error-rate") == true)
        let types = try await scenario.eventTypes()
        #expect(types.suffix(3) == ["CheckBreached", "RollbackStarted", "RolledBack"])
        #expect(types.filter { $0 == "StageStarted" }.count == stage + 1)
        #expect(router.weights == Array(Self.weights.prefix(stage + 1)) + [0])
        #expect(world.workload.log.last == "scaleDown")
        #expect(!world.workload.log.contains("promote v2"))
        #expect(router.finalizeCount >= 1)
        // Traffic went back to stable before the canary was scaled down: the order of the effects.
        let effects = try await scenario.store.effects(rollout: rollout.id).map(\.effect)
        let rollbackEffects = Array(effects.drop { $0 != .setWeight(0) })
        #expect(rollbackEffects.prefix(2) == [.setWeight(0), .scaleDownCanary])
    }

    @Test(arguments: NoDataAction.allCases)
    func noDataPausesOrRollsBackPerStrategy(action: NoDataAction) async throws {
        let scenario = try await Scenario(strategies: [Fixtures.strategy(noDataLimit: 3, onNoData: action)])
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        let rollout = try await scenario.start()
        try await scenario.tick()
        world.metrics.answer(.error("prometheus: connection refused"))
        try await scenario.tick(3)
        let phase = try await scenario.phase(rollout.id)
        let types = try await scenario.eventTypes()
        #expect(types.filter { $0 == "CheckNoData" }.count >= 1)
        #expect(!types.contains("StageCompleted"), "no promotion without evidence")
        switch action {
        case .pause:
            #expect(phase == .paused)
            #expect(try await scenario.store.rollout(rollout.id)?.pause == .noData(check: "error-rate"))
            #expect(world.router.current == 5)
            // Data comes back, a human resumes, and the rollout goes on to the end.
            world.metrics.answer(.value(0.01))
            _ = try await scenario.command(rollout.id, .resume(actor: "oncall"))
            #expect(try await scenario.tickUntilFinal(rollout.id).phase == .succeeded)
        case .rollback:
            #expect(try await scenario.tickUntilFinal(rollout.id).phase == .rolledBack)
            #expect(world.router.current == 0)
        }
    }

    @Test func aRollbackDoesNotWaitForAHungObservation() async throws {
        var options = Scenario.fastOptions
        options.observeTimeout = .seconds(60)
        let scenario = try await Scenario(options: options)
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        let rollout = try await scenario.start()
        try await scenario.tick()
        world.metrics.gate.close()
        scenario.clock.advance(by: .seconds(10))
        try await waitUntil("the query to hang", interval: .milliseconds(2)) { world.metrics.gate.waiters == 1 }

        let started = ContinuousClock.now
        let rolling = try await scenario.controller.command(
            rolloutID: rollout.id, .rollback(actor: "oncall", reason: "pager"))
        #expect(rolling.phase == .rollingBack)
        try await waitUntil("the rollback to finish", timeout: .seconds(5), interval: .milliseconds(2)) {
            try await scenario.phase(rollout.id) == .rolledBack
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(world.router.current == 0)
        #expect(world.metrics.gate.waiters == 0, "the hung observation was cancelled")
        let rollback = try #require(
            try await scenario.store.events(EventQuery(rollout: rollout.id)).first {
                $0.type == .rollbackStarted
            })
        #expect(rollback.actor == "oncall")
        #expect(scenario.controller.snapshot().ticksPreempted >= 1)
    }

    @Test func aRollbackCancelsASlowEffectAndPutsTrafficBackFirst() async throws {
        let scenario = try await Scenario(strategies: [Fixtures.strategy(weights: [50, 100])])
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        world.workload.gate.close()  // promoteStable hangs
        let rollout = try await scenario.start()
        for _ in 0..<20 where world.workload.gate.waiters == 0 {
            try await scenario.tick(orUntil: { world.workload.gate.waiters == 1 })
        }
        #expect(try await scenario.phase(rollout.id) == .promoting)
        #expect(world.workload.gate.waiters == 1)
        _ = try await scenario.controller.command(rolloutID: rollout.id, .rollback(actor: "oncall", reason: "bad"))
        try await waitUntil("the rollback to finish", timeout: .seconds(5), interval: .milliseconds(2)) {
            try await scenario.phase(rollout.id) == .rolledBack
        }
        #expect(world.router.current == 0)
        #expect(world.workload.gate.waiters == 0)
        #expect(!world.workload.log.contains("promote v2"))
        let superseded = try await scenario.store.effects(rollout: rollout.id, status: .superseded)
        #expect(superseded.map(\.effect) == [.promoteStable(version: "v2")])
    }

    @Test func aFailedEffectIsReportedAndRetriedByTheNextDecision() async throws {
        let scenario = try await Scenario()
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        world.router.failNextSets(1)
        let rollout = try await scenario.start()
        try await scenario.tick()
        let failed = try #require(try await scenario.store.events().first { $0.type == .effectFailed })
        #expect(failed.message.contains("router answered 503"))
        #expect(try await scenario.tickUntilFinal(rollout.id).phase == .succeeded)
        #expect(world.router.weights == [5, 25, 50, 100, 0])
        #expect(try await scenario.store.effects(rollout: rollout.id, status: .reported).count == 1)
        #expect(scenario.controller.snapshot().effectsFailed == 1)
    }

    @Test func driftIsSeenAndPutRight() async throws {
        let scenario = try await Scenario()
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        let rollout = try await scenario.start()
        try await scenario.tick()
        world.router.drift(to: 40)
        try await scenario.tick(2)
        let types = try await scenario.eventTypes(rollout.id)
        #expect(types.contains("DriftDetected"))
        #expect(types.contains("DriftCorrected"))
        #expect(world.router.current == 5)
    }
}
