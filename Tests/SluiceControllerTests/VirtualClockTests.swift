import Logging
import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceStore
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
        // One read: a tick may mark the failure reported between two reads by status, listing it twice.
        let failed = try await scenario.store.effects(rollout: rollout.id, status: nil)
            .filter { $0.status == .failed || $0.status == .reported }
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

        // Without the rollouts' table the tick's record fails (dropped: the next tick is an interval away), then
        // the read that follows it fails, and is retried after the backoff.
        let database = scenario.directory + "/sluice.db"
        try StoreErrorCountTests.sqlite(database, "ALTER TABLE rollouts RENAME TO rollouts_hidden")
        scenario.clock.advance(by: .seconds(10))
        try await waitUntil("a failed record and read, then the backoff", interval: .milliseconds(2)) {
            scenario.controller.snapshot().storeErrors == 2 && scenario.clock.timers == 1
        }
        scenario.clock.advance(by: .seconds(3599))
        #expect(scenario.controller.snapshot().storeErrors == 2, "no retry before the backoff has passed")
        scenario.clock.advance(by: .seconds(1))
        try await waitUntil("the retry, failing again", timeout: .seconds(10), interval: .milliseconds(2)) {
            scenario.controller.snapshot().storeErrors == 3 && scenario.clock.timers == 1
        }

        try StoreErrorCountTests.sqlite(database, "ALTER TABLE rollouts_hidden RENAME TO rollouts")
        scenario.clock.advance(by: .seconds(3600))
        try await scenario.settle()
        let snapshot = scenario.controller.snapshot()
        #expect(snapshot.storeErrors == 3)
        #expect(snapshot.ticks == ticks + 1, "the tick went on once the store answered")
        #expect(try await scenario.phase(rollout.id) == .progressing)
    }

    @Test func resumingRolloutsAtStartBacksOffOnTheControllersClock() async throws {
        let directory = try makeTemporaryDirectory("sluice-resume-backoff")
        let database = directory + "/sluice.db"
        let store = try Store(path: database)
        _ = try await store.putStrategy(Fixtures.strategy(), now: Fixtures.epoch)
        try StoreErrorCountTests.sqlite(database, "ALTER TABLE rollouts RENAME TO rollouts_hidden")
        var options = Scenario.fastOptions
        options.storeRetryDelay = .seconds(3600)
        let clock = ManualClock()
        let controller = Controller(
            store: store, providers: FakeProviderFactory(), clock: clock, http: nil,
            logger: Logger(label: "resume", factory: { _ in SwiftLogNoOpLogHandler() }), options: options)
        let running = Task { try await controller.run() }
        defer { running.cancel() }
        try await waitUntil("a failed read of the rollouts to resume, then the backoff", interval: .milliseconds(2)) {
            controller.snapshot().storeErrors == 1 && clock.timers == 1
        }
        try StoreErrorCountTests.sqlite(database, "ALTER TABLE rollouts_hidden RENAME TO rollouts")
        #expect(!controller.snapshot().running)
        clock.advance(by: .seconds(3600))
        try await waitUntil("the controller to resume", timeout: .seconds(10), interval: .milliseconds(2)) {
            controller.snapshot().running
        }
        #expect(controller.snapshot().storeErrors == 1)
    }

    @Test func supersedeGivesUpWaitingForARollbackWhenTheControllersClockPassesItsBound() async throws {
        var options = Scenario.fastOptions
        options.supersedeTimeout = .seconds(3600)
        options.effectTimeout = .seconds(7200)
        let scenario = try await Scenario(options: options)
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        let first = try await scenario.start(version: "v2")
        try await scenario.tick(2)
        world.router.gate.close()  // the rollback's setWeight(0) hangs: the superseded rollout never finishes
        let controller = scenario.controller
        let superseding = Task {
            try await controller.startRollout(
                strategy: Fixtures.strategy().key, version: "v3", actor: "ci", supersede: true)
        }
        try await waitUntil("setWeight(0) and the supersede wait on their bounds", interval: .milliseconds(2)) {
            world.router.gate.waiters == 1 && scenario.clock.timers == 2
        }
        scenario.clock.advance(by: .seconds(3600))
        let result = await superseding.result
        #expect(throws: ControllerError.self) { try result.get() }
        let error = try #require(result.failure as? ControllerError)
        #expect(error.code == .conflict)
        #expect(error.message.contains("rollout \(first.id) is still rolling back after 3600.0 seconds"), "\(error)")
        world.router.gate.openGate()
        #expect(try await scenario.tickUntilFinal(first.id).phase == .rolledBack)
    }
}

extension Result {
    /// The error of a failure, nil for a success.
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
