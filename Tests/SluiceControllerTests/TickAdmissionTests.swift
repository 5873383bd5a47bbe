import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

/// `Controller.Options.maxConcurrentTicks`: ticks beyond it wait their turn (and count as late); commands never
/// wait behind them.
@Suite struct TickAdmissionTests {
    /// Runs `body` with rollouts of "checkout" and "search" started, one tick admitted at a time, and both worlds'
    /// checks held (their metric gates closed); stops the scenario after.
    func withTwoRolloutsOneTickAtATime(
        _ body: (Scenario, _ rollouts: [String: Rollout], _ worlds: [String: FakeWorld]) async throws -> Void
    ) async throws {
        var options = Scenario.fastOptions
        options.maxConcurrentTicks = 1
        let scenario = try await Scenario(
            strategies: [Fixtures.strategy(name: "checkout"), Fixtures.strategy(name: "search")], options: options)
        do {
            let rollouts = ["checkout": try await scenario.start("checkout"), "search": try await scenario.start("search")]
            let worlds = ["checkout": scenario.world("checkout"), "search": scenario.world("search")]
            for world in worlds.values { world.metrics.gate.close() }
            try await body(scenario, rollouts, worlds)
        } catch {
            await scenario.stop()
            throw error
        }
        await scenario.stop()
    }

    @Test func ticksBeyondTheLimitWaitTheirTurnAndARollbackDoesNotWaitBehindThem() async throws {
        try await withTwoRolloutsOneTickAtATime { scenario, rollouts, worlds in
            let checkout = rollouts["checkout"]!
            let search = rollouts["search"]!
            let askedBefore = worlds.mapValues(\.metrics.asked.count)

            // Both fall due; one is admitted and hangs in its check, the other waits for admission.
            scenario.clock.advance(by: .seconds(10))
            try await waitUntil("one tick to hang in its check", interval: .milliseconds(2)) {
                worlds.values.map(\.metrics.gate.waiters).reduce(0, +) == 1
            }
            let observing = worlds["checkout"]!.metrics.gate.waiters == 1 ? "checkout" : "search"
            let waiting = observing == "checkout" ? search : checkout
            let waitingWorld = worlds[observing == "checkout" ? "search" : "checkout"]!
            let waitingName = observing == "checkout" ? "search" : "checkout"
            #expect(waitingWorld.metrics.asked.count == askedBefore[waitingName], "the waiting tick has not observed")

            // On-call rolls the waiting rollout back: recorded and carried out at once, its tick still queued.
            let rolledBack = try await scenario.controller.command(
                rolloutID: waiting.id, .rollback(actor: "oncall", reason: "by hand"))
            #expect(rolledBack.phase == .rollingBack)
            try await waitUntil("the rollback's weight change", interval: .milliseconds(2)) {
                waitingWorld.router.current == 0
            }
            // Its confirmation is a tick too, and it does not wait for admission either.
            try await waitUntil("the rollback to be confirmed", interval: .milliseconds(2)) {
                try await scenario.phase(waiting.id) == .rolledBack
            }
            #expect(worlds[observing]!.metrics.gate.waiters == 1, "the admitted tick still hangs")

            for world in worlds.values { world.metrics.gate.openGate() }
            try await scenario.settle()
            #expect(waitingWorld.metrics.asked.count == askedBefore[waitingName], "a rollback runs no analysis")
            let lateness = ExposedSamples(scenario.controller.histograms.exposition())
            #expect(
                lateness["sluice_tick_lateness_seconds_count"] == 4,
                "two first ticks, the admitted one, and the rollback's confirmation")
            #expect(try await scenario.phase(observing == "checkout" ? checkout.id : search.id) == .progressing)
        }
    }

    @Test func aTickAdmittedLateIsFollowedAnIntervalAfterItObservedSoABurstSpreadsOut() async throws {
        try await withTwoRolloutsOneTickAtATime { scenario, _, worlds in

            // Both due at +10 s; the first admitted hangs 3 s, so the other observes at +13 s.
            scenario.clock.advance(by: .seconds(10))
            try await waitUntil("one tick to hang in its check", interval: .milliseconds(2)) {
                worlds.values.map(\.metrics.gate.waiters).reduce(0, +) == 1
            }
            let first = worlds["checkout"]!.metrics.gate.waiters == 1 ? "checkout" : "search"
            let second = first == "checkout" ? "search" : "checkout"
            scenario.clock.advance(by: .seconds(3))
            for world in worlds.values { world.metrics.gate.openGate() }
            try await scenario.settle()
            let asked = { worlds.mapValues(\.metrics.asked.count) }
            let afterBurst = asked()

            scenario.clock.advance(by: .seconds(7))  // +20 s: only the first is due
            try await scenario.settle()
            #expect(asked()[first]! > afterBurst[first]!)
            #expect(asked()[second] == afterBurst[second], "the second observed at +13 s, so it is due at +23 s")

            scenario.clock.advance(by: .seconds(3))  // +23 s
            try await scenario.settle()
            #expect(asked()[second]! > afterBurst[second]!)
            let lateness = ExposedSamples(scenario.controller.histograms.exposition())
            #expect(lateness["sluice_tick_lateness_seconds_sum"] == 3, "only the tick that waited for admission was late (3 s)")
        }
    }
}
