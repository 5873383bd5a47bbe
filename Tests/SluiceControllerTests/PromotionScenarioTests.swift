import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport
import Testing

@Suite struct PromotionScenarioTests {
    /// What a healthy rollout through 5/25/50/100 writes, in order.
    static let promotionLog: [String] =
        ["RolloutStarted"]
        + Array(repeating: ["CanaryDeployed", "StageStarted", "TrafficShifted", "StageCompleted"], count: 4).flatMap {
            $0
        }
        + ["Promoting", "StablePromoted", "Promoted"]

    @Test func aHealthyRolloutIsPromotedThroughEveryStage() async throws {
        let scenario = try await Scenario()
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        let rollout = try await scenario.start()
        #expect(rollout.id == "r-20261124-0001")
        #expect(rollout.phase == .pending)

        let final = try await scenario.tickUntilFinal(rollout.id)
        #expect(final.phase == .succeeded)
        #expect(try await scenario.eventTypes() == Self.promotionLog)
        #expect(world.router.weights == [5, 25, 50, 100, 0])
        #expect(world.router.finalizeCount == 1)
        #expect(
            world.workload.log == [
                "deploy v2 5", "deploy v2 25", "deploy v2 50", "deploy v2 100", "promote v2", "scaleDown",
            ])
        // One query per tick while the canary takes traffic: 4 per stage from its shift to its end, plus the ticks
        // that enter stages 2-4 (the previous weight still flows), plus the tick that finds the promotion confirmed.
        #expect(world.metrics.asked.count == 20)
        #expect(Set(world.metrics.asked) == ["rate(errors{instance=~\"10.0.0.2:80\"}[10s])"])
        #expect(try await scenario.store.samples(rollout: rollout.id, check: "error-rate").count == 20)
        // The pools swapped: the next rollout goes to the other pool.
        #expect(
            try await scenario.store.poolRoles(rollout.strategy)
                == Pools(stable: ["10.0.0.2:80"], canary: ["10.0.0.1:80"]))
        let events = try await scenario.store.events()
        #expect(events.map(\.seq) == Array(1...Int64(events.count)))
        #expect(try await scenario.store.effects(rollout: rollout.id, status: .pending).isEmpty)
        let snapshot = scenario.controller.snapshot()
        #expect(snapshot.drivenRollouts == 0)
        #expect(snapshot.effectsFailed == 0)
    }

    @Test func aRestartBetweenAnyTwoTicksEndsTheSameWithAGapFreeLog() async throws {
        // The run without restart, as the reference.
        let reference = try await Scenario()
        let id = try await reference.start().id
        var ticks = 0
        while try await reference.phase(id)?.isTerminal == false {
            try await reference.tick()
            ticks += 1
        }
        let expected = try await reference.store.events()
        let expectedWeights = reference.world().router.weights
        await reference.stop()
        #expect(ticks > 20)

        for restartAfter in 0...ticks {
            let scenario = try await Scenario()
            let rollout = try await scenario.start()
            try await scenario.tick(restartAfter)
            try await scenario.restart()
            let final = try await scenario.tickUntilFinal(rollout.id)
            let events = try await scenario.store.events()
            #expect(final.phase == .succeeded, "restart after tick \(restartAfter)")
            #expect(events == expected, "restart after tick \(restartAfter)")
            #expect(scenario.world().router.weights == expectedWeights, "restart after tick \(restartAfter)")
            await scenario.stop()
        }
    }

    @Test func aSlowProviderDelaysOnlyItsOwnRollout() async throws {
        var options = Scenario.fastOptions
        options.observeTimeout = .seconds(3600)  // the gate, not the bound, decides when the slow query returns
        let scenario = try await Scenario(
            strategies: [Fixtures.strategy(name: "slow"), Fixtures.strategy(name: "fast")], options: options)
        defer { Task { await scenario.stop() } }
        let slow = try await scenario.start("slow")
        let fast = try await scenario.start("fast")
        try await scenario.tick()  // both shift 5 % and begin analysis on the next tick
        scenario.world("slow").metrics.gate.close()
        scenario.clock.advance(by: .seconds(10))
        try await waitUntil("the slow rollout's query to hang", interval: .milliseconds(2)) {
            scenario.world("slow").metrics.gate.waiters == 1
        }
        // The fast rollout goes all the way while the slow one's query hangs.
        for _ in 0..<40 where try await scenario.phase(fast.id) != .succeeded {
            try await waitUntil("the fast rollout to sleep again", interval: .milliseconds(2)) {
                let snapshot = scenario.controller.snapshot()  // every driver but the hung one sleeps
                return scenario.clock.sleepers == snapshot.drivenRollouts - 1 && snapshot.runningEffectBatches == 0
            }
            scenario.clock.advance(by: .seconds(10))
        }
        #expect(try await scenario.phase(fast.id) == .succeeded)
        #expect(try await scenario.phase(slow.id) == .progressing)
        #expect(scenario.world("slow").router.current == 5)
        scenario.world("slow").metrics.gate.openGate()
        try await scenario.settle()
        #expect(try await scenario.tickUntilFinal(slow.id).phase == .succeeded)
    }

    @Test func aProviderThatHangsPastTheBoundGivesNoData() async throws {
        var options = Scenario.fastOptions
        options.observeTimeout = .milliseconds(100)
        let scenario = try await Scenario(options: options)
        defer { Task { await scenario.stop() } }
        let rollout = try await scenario.start()
        try await scenario.tick()
        scenario.world().metrics.gate.close()
        // The bound runs on the controller's clock: the query hangs until the clock passes it.
        try await scenario.tick(orUntil: { scenario.world().metrics.gate.waiters == 1 && scenario.clock.timers == 1 })
        scenario.clock.advance(by: .milliseconds(100))
        try await scenario.settle()
        let samples = try await scenario.store.samples(rollout: rollout.id, check: "error-rate")
        #expect(samples.map(\.verdict) == [.pass, .noData])
        #expect(samples.last?.reason?.contains("did not finish within 0.1 seconds") == true)
        #expect(try await scenario.eventTypes().suffix(2) == ["TrafficShifted", "CheckNoData"])
        #expect(try await scenario.phase(rollout.id) == .progressing)
    }

    /// The checks are sampled in Promoting until the stable is promoted (decide's `checksToSample`, one rule for
    /// the controller and `decide`): the canary serves 100 % while a failing promotion is retried, so a breach
    /// there rolls back rather than waiting for the promotion to work.
    @Test func aBreachWhilePromotionIsRetriedRollsBack() async throws {
        let scenario = try await Scenario()
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        world.workload.failNextPromotions(1_000)
        let rollout = try await scenario.start()
        for _ in 0..<40 where try await scenario.phase(rollout.id) != .promoting { try await scenario.tick() }
        try await scenario.tick(2)
        #expect(try await scenario.phase(rollout.id) == .promoting)
        #expect(try await scenario.eventTypes().contains("EffectFailed"))
        let askedBefore = world.metrics.asked.count

        world.metrics.answer(.value(0.5))
        let final = try await scenario.tickUntilFinal(rollout.id)
        #expect(world.metrics.asked.count > askedBefore)
        #expect(final.phase == .rolledBack)
        #expect(final.rollbackCause == .breach(check: "error-rate"))
        #expect(!world.workload.log.contains("promote v2"))
        #expect(world.router.current == 0)
    }
}
