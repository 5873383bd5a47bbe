import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport
import Testing

/// The router's own view through the real controller on the virtual clock (#23.8): the observer asks a router
/// that has one while the canary has traffic, and a canary the router takes for down on two looks in a row is
/// failed, traffic first, with the router's words in the events, while every metric check passes.
@Suite struct RouterHealthScenarioTests {
    @Test func aCanaryTheRouterTakesForDownIsFailedWhileItsChecksPass() async throws {
        let scenario = try await Scenario(strategies: [Fixtures.strategy(weights: [10, 100])])
        defer { Task { await scenario.stop() } }
        scenario.world().metrics.answer(with: { _ in .value(0) })
        let summary = "the ALB's canary target group targetgroup/sluice-canary/1: i-1 unused (Target.InvalidState): no target is healthy"
        scenario.world().router.report(RouterCanaryHealth(down: true, summary: summary))
        let rollout = try await scenario.start()
        let final = try await scenario.tickUntilFinal(rollout.id, limit: 8)
        #expect(final.phase == .failed)
        #expect(scenario.world().router.weights.last == 0)
        let events = try await scenario.store.events(EventQuery(rollout: rollout.id))
        let started = try #require(events.first { $0.type == .rollbackStarted })
        #expect(started.message.contains("the router takes it for down on 2 looks in a row: \(summary)"))
        #expect(!events.contains { $0.type == .checkBreached })
    }

    @Test func aCanaryTheRouterTakesForHealthyIsPromoted() async throws {
        let scenario = try await Scenario(strategies: [Fixtures.strategy(weights: [10, 100])])
        defer { Task { await scenario.stop() } }
        scenario.world().metrics.answer(with: { _ in .value(0) })
        scenario.world().router.report(RouterCanaryHealth(down: false, summary: "i-1 healthy"))
        let rollout = try await scenario.start()
        #expect(try await scenario.tickUntilFinal(rollout.id).phase == .succeeded)
    }
}
