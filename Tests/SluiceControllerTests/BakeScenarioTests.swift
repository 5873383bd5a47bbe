import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport
import Testing

/// `spec.bake` through the real controller (manual clock, fake providers, a real store): the checks keep being
/// sampled after promotion, rendered for the new version's pool, across a restart; a breach swaps the pools back.
@Suite struct BakeScenarioTests {
    static let strategy: Strategy = {
        var strategy = Fixtures.strategy()
        strategy.bake = Bake(duration: .seconds(30))
        return strategy
    }()
    static let newPoolQuery = "rate(errors{instance=~\"10.0.0.2:80\"}[10s])"

    /// Ticks until `id` bakes; fails after `limit` ticks.
    func tickUntilBaking(_ scenario: Scenario, _ id: String, limit: Int = 60) async throws {
        for _ in 0..<limit where try await scenario.phase(id) != .baking {
            try await scenario.tick()
        }
        try #require(try await scenario.phase(id) == .baking)
    }

    @Test func aPassingBakeSucceedsAndItsChecksWatchTheNewVersionAcrossARestart() async throws {
        let scenario = try await Scenario(strategies: [Self.strategy])
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        let id = try await scenario.start().id
        try await tickUntilBaking(scenario, id)
        let askedBefore = world.metrics.asked.count
        try await scenario.tick()
        try await scenario.restart()
        try await scenario.tick()
        #expect(try await scenario.phase(id) == .baking)
        let asked = Array(world.metrics.asked.dropFirst(askedBefore))
        #expect(asked.count >= 2)
        #expect(Set(asked) == [Self.newPoolQuery], "the bake samples the new version's pool: \(asked)")
        let final = try await scenario.tickUntilFinal(id)
        #expect(final.phase == .succeeded)
        let types = try await scenario.eventTypes(id)
        #expect(Array(types.suffix(4)) == ["Promoting", "StablePromoted", "BakeStarted", "Promoted"])
        #expect(
            try await scenario.store.poolRoles(final.strategy)
                == Pools(stable: ["10.0.0.2:80"], canary: ["10.0.0.1:80"]))
        #expect(world.router.weights.last == 0)
    }

    @Test func aBreachWhileBakingSwapsThePoolsBack() async throws {
        let scenario = try await Scenario(strategies: [Self.strategy])
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        let id = try await scenario.start().id
        try await tickUntilBaking(scenario, id)
        world.metrics.answer(.value(0.5))
        try await scenario.tick()
        let rollingBack = try #require(try await scenario.store.rollout(id))
        #expect(rollingBack.phase.isRollingBack)
        #expect(rollingBack.pools == Pools(stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80"]))
        let final = try await scenario.tickUntilFinal(id)
        #expect(final.phase == .rolledBack)
        let types = try await scenario.eventTypes(id)
        #expect(Array(types.suffix(4)) == ["BakeStarted", "CheckBreached", "RollbackStarted", "RolledBack"])
        #expect(!types.contains("Promoted"))
        #expect(world.router.weights.last == 0)
        // The next rollout starts where the previous version is stable again.
        #expect(
            try await scenario.store.poolRoles(final.strategy)
                == Pools(stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80"]))
    }
}
