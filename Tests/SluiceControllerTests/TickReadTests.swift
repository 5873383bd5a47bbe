import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

/// A tick reads the rollout only when something beside the driver's loop may have changed it (docs/architecture.md,
/// "Rules that keep it correct", 4): a steady tick observes the record the last one left, and sends its record only.
/// The tick's read joins the rollout's effects; with that table hidden every read fails, so a tick that reads is
/// seen failing and one that does not is seen going on.
struct TickReadTests {
    @Test
    func aSteadyTickDoesNotReadTheRolloutAndACommandMakesTheNextOneRead() async throws {
        // A stage held long enough that no tick of this test ends it (which would commit an effect).
        let scenario = try await Scenario(strategies: [Fixtures.strategy(hold: .seconds(3600))])
        defer { Task { await scenario.stop() } }
        let rollout = try await scenario.start()
        try await scenario.tick()  // reads: the start committed effects
        let database = scenario.directory + "/sluice.db"
        try StoreErrorCountTests.sqlite(database, "ALTER TABLE effects RENAME TO effects_hidden")
        let before = scenario.controller.snapshot()
        try await scenario.tick(3)
        let steady = scenario.controller.snapshot()
        #expect(steady.storeErrors == 0, "no tick read the rollout")
        #expect(steady.ticks == before.ticks + 3, "each tick recorded")
        let samples = try await scenario.store.samples(rollout: rollout.id, check: "error-rate")
        #expect(samples.count == 4, "a sample from each tick: \(samples.map(\.time))")

        // A command (refused or not) may have changed the rollout: the next tick reads, and fails, then retries.
        _ = try await scenario.command(rollout.id, .pause(actor: "oncall"))
        scenario.clock.advance(by: .seconds(10))
        try await waitUntil("the next tick's read to fail", interval: .milliseconds(2)) {
            scenario.controller.snapshot().storeErrors >= 1 && scenario.clock.timers == 1
        }
        #expect(scenario.controller.snapshot().ticks == steady.ticks, "the tick is held at its read")
        try StoreErrorCountTests.sqlite(database, "ALTER TABLE effects_hidden RENAME TO effects")
        scenario.clock.advance(by: scenario.options.storeRetryDelay)
        try await scenario.settle()
        #expect(scenario.controller.snapshot().ticks == steady.ticks + 1, "the tick went on once the read answered")
        #expect(try await scenario.phase(rollout.id) == .paused)
    }
}
