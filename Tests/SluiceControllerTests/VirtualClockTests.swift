import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

/// Every bound and backoff of the driver runs on the controller's clock, so a test passes a five-minute bound or an
/// hour of store backoff by advancing a manual clock, in milliseconds. On the real clock each of these would hang.
@Suite struct VirtualClockTests {
    @Test func anEffectThatHangsPastItsBoundFailsWhenTheControllersClockPassesIt() async throws {
        let scenario = try await Scenario()  // effectTimeout 300 s
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        world.router.gate.close()
        let rollout = try await scenario.controller.startRollout(
            strategy: Fixtures.strategy().key, version: "v2", actor: "ci", supersede: false)
        try await waitUntil("setWeight(5) to hang on its bound", interval: .milliseconds(2)) {
            world.router.gate.waiters == 1 && scenario.clock.timers == 1
        }
        scenario.clock.advance(by: .seconds(300))
        try await waitUntil("the effect to fail on its bound", timeout: .seconds(10), interval: .milliseconds(2)) {
            scenario.controller.snapshot().effectsFailed == 1
        }
        let failed = try await scenario.store.effects(rollout: rollout.id, status: .failed)
            + scenario.store.effects(rollout: rollout.id, status: .reported)
        #expect(failed.map(\.effect) == [.setWeight(5)])
        #expect(failed.first?.message?.contains("setWeight(5) did not finish within 300.0 seconds") == true)

        world.router.gate.openGate()
        try await scenario.settle()
        #expect(try await scenario.tickUntilFinal(rollout.id).phase == .succeeded)
        #expect(try await scenario.eventTypes(rollout.id).contains("EffectFailed"))
    }

    @Test func aCheckThatHangsPastItsBoundIsNoDataWhenTheControllersClockPassesIt() async throws {
        let scenario = try await Scenario()  // observeTimeout 60 s
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        let rollout = try await scenario.start()
        try await scenario.tick()
        world.metrics.gate.close()
        try await scenario.tick(orUntil: { world.metrics.gate.waiters == 1 && scenario.clock.timers == 1 })
        scenario.clock.advance(by: .seconds(60))
        try await waitUntil("the check to give no data", timeout: .seconds(10), interval: .milliseconds(2)) {
            try await scenario.store.samples(rollout: rollout.id, check: "error-rate").last?.verdict == .noData
        }
        world.metrics.gate.openGate()
        try await scenario.settle()
        let samples = try await scenario.store.samples(rollout: rollout.id, check: "error-rate")
        #expect(samples.map(\.verdict).prefix(2) == [.pass, .noData])
        #expect(samples.dropFirst().first?.reason?.contains("did not finish within 60.0 seconds") == true)
    }

    @Test func aFailingStoreIsRetriedAfterTheBackoffOnTheControllersClock() async throws {
        var options = Scenario.fastOptions
        options.storeRetryDelay = .seconds(3600)
        let scenario = try await Scenario(options: options)
        defer { Task { await scenario.stop() } }
        let rollout = try await scenario.start()
        try await scenario.tick()
        let ticks = scenario.controller.snapshot().ticks

        // The tick reads the rollout with its failed effects: without that table every read fails.
        let database = scenario.directory + "/sluice.db"
        try StoreErrorCountTests.sqlite(database, "ALTER TABLE effects RENAME TO effects_hidden")
        scenario.clock.advance(by: .seconds(10))
        try await waitUntil("a failed read, then the backoff", interval: .milliseconds(2)) {
            scenario.controller.snapshot().storeErrors == 1 && scenario.clock.timers == 1
        }
        scenario.clock.advance(by: .seconds(3599))
        #expect(scenario.controller.snapshot().storeErrors == 1, "no retry before the backoff has passed")
        scenario.clock.advance(by: .seconds(1))
        try await waitUntil("the retry, failing again", timeout: .seconds(10), interval: .milliseconds(2)) {
            scenario.controller.snapshot().storeErrors == 2 && scenario.clock.timers == 1
        }

        try StoreErrorCountTests.sqlite(database, "ALTER TABLE effects_hidden RENAME TO effects")
        scenario.clock.advance(by: .seconds(3600))
        try await scenario.settle()
        let snapshot = scenario.controller.snapshot()
        #expect(snapshot.storeErrors == 2)
        #expect(snapshot.ticks == ticks + 1, "the tick went on once the store answered")
        #expect(try await scenario.phase(rollout.id) == .progressing)
    }
}
