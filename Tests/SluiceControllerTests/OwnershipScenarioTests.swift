import Logging
import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport
import Testing

/// The lease table in memory, as one replica sees it alone: every free shard can be taken; `fail` makes every call
/// throw, as an unreachable database would.
final class FakeLeaseStore: LeaseStore {
    private let state = Locked<(holders: [Int: (replica: String, epoch: Int64)], failing: Bool)>(([:], false))

    func fail(_ failing: Bool) { state.withLock { $0.failing = failing } }

    func renewLeases(_ held: [Int: Int64], replica: String, name: String, duration: Duration) async throws
        -> (renewed: Set<Int>, table: LeaseTable)
    {
        try state.withLock { state in
            if state.failing { throw StoreError(.database, "cannot renew: PostgreSQL did not answer (test)") }
            let renewed = held.filter { state.holders[$0.key]?.replica == replica && state.holders[$0.key]?.epoch == $0.value }
            let leases = (0..<Shards.count).map {
                ShardLease(
                    shard: $0, holder: state.holders[$0]?.replica, epoch: state.holders[$0]?.epoch ?? 0, expired: false)
            }
            return (Set(renewed.keys), LeaseTable(leases: leases, liveReplicas: [replica]))
        }
    }

    func acquireLeases(_ shards: [Int], replica: String, duration: Duration) async throws -> [Int: Int64] {
        try state.withLock { state in
            if state.failing { throw StoreError(.database, "cannot acquire: PostgreSQL did not answer (test)") }
            var taken: [Int: Int64] = [:]
            for shard in shards where state.holders[shard] == nil || state.holders[shard]?.replica == replica {
                let epoch = (state.holders[shard]?.epoch ?? 0) + 1
                state.holders[shard] = (replica, epoch)
                taken[shard] = epoch
            }
            return taken
        }
    }

    func releaseLeases(_ held: [Int: Int64], replica: String, leaving: Bool) async throws {
        state.withLock { state in
            for (shard, epoch) in held where state.holders[shard]?.replica == replica && state.holders[shard]?.epoch == epoch {
                state.holders[shard] = nil
            }
        }
    }
}

/// The controller with shard ownership on a manual clock (docs/ha.md "Its own deadline"): when its renewals fail it
/// stops acting at its own deadline (renewal sent + lease - margin), before its leases could expire elsewhere; its
/// readiness says why; when the database answers again it takes its shards back and the rollout goes on.
struct OwnershipScenarioTests {
    @Test
    func aReplicaThatCannotRenewStopsActingAtItsDeadlineAndGoesOnWhenItCan() async throws {
        let clock = ManualClock()
        let directory = try makeTemporaryDirectory("sluice-ownership")
        let store = try Store(path: directory + "/sluice.db")
        _ = try await store.putStrategy(Fixtures.strategy(), now: clock.now())
        let logger = Logger(label: "ownership", factory: { _ in SwiftLogNoOpLogHandler() })
        let leases = FakeLeaseStore()
        let ownership = ShardOwnership(
            store: leases, view: LeaseView(replica: "r1"), name: "test", clock: clock,
            options: LeaseOptions(duration: .seconds(15), renewEvery: .seconds(5)), logger: logger)
        let factory = FakeProviderFactory()
        let controller = Controller(
            store: store, providers: factory, clock: clock, http: nil, logger: logger, options: Scenario.fastOptions,
            ownership: ownership)
        let running = Task { try await controller.run() }
        defer { running.cancel() }
        let key = StrategyKey(namespace: "default", name: "checkout")
        try await waitUntil("the shards to be taken", interval: .milliseconds(2)) { controller.owns(key) }
        #expect(controller.snapshot().ownershipProblem == nil)
        #expect(controller.snapshot().shardsOwned == Shards.count)

        _ = try await controller.startRollout(strategy: key, version: "v2", actor: "ci", supersede: false)
        let router = factory.world(key).router
        try await waitUntil("the first weight", interval: .milliseconds(2)) { router.current == 5 }
        // ... and its effect recorded as done: one still being recorded when the leases go is replayed when they come
        // back (as after a restart), a second setWeight(5) that a loaded machine made this test see.
        try await waitUntil("the first weight's effect to be recorded", interval: .milliseconds(2)) {
            controller.snapshot().runningEffectBatches == 0
        }

        // The database stops answering. The last renewal was sent at 0: the deadline is 0 + 15 - 3 = 12 s.
        leases.fail(true)
        clock.advance(by: .seconds(11))
        try await waitUntil("the renewal at 11 s to fail and sleep again", interval: .milliseconds(2)) {
            clock.timers >= 2
        }
        #expect(controller.owns(key), "before its deadline it still acts")
        #expect(controller.snapshot().ownershipProblem == nil)
        clock.advance(by: .seconds(1))
        try await waitUntil("the drivers to stop at the deadline", interval: .milliseconds(2)) {
            controller.snapshot().drivenRollouts == 0
        }
        #expect(!controller.owns(key))
        #expect(controller.snapshot().ownershipProblem?.contains("cannot renew its shard leases") == true)
        let written = router.weights
        // Stages fall due meanwhile (30 s holds); nothing acts on them.
        for _ in 0..<6 {
            clock.advance(by: .seconds(10))
            try await waitUntil("the clock's sleepers to settle", interval: .milliseconds(2)) { clock.timers >= 2 }
        }
        #expect(router.weights == written, "router writes after the deadline")
        #expect(controller.snapshot().drivenRollouts == 0)

        // The database answers again: the replica takes its shards back (new epochs) and the rollout goes on.
        leases.fail(false)
        clock.advance(by: .seconds(5))
        try await waitUntil("the shards to be taken again", interval: .milliseconds(2)) { controller.owns(key) }
        #expect(controller.snapshot().ownershipProblem == nil)
        // Resumed as after a restart: it ticks again, and once its stage held 30 s of passing checks it shifts.
        try await waitUntil("the rollout's driver to be back", interval: .milliseconds(2)) {
            controller.snapshot().drivenRollouts == 1 && clock.sleepers == 1
        }
        #expect(router.weights == written)
        for _ in 0..<6 where router.current != 25 {
            clock.advance(by: .seconds(10))
            try await waitUntil("the tick to settle", interval: .milliseconds(2)) {
                clock.sleepers == 1 && controller.snapshot().runningEffectBatches == 0
            }
        }
        #expect(router.current == 25, "the rollout goes on: \(router.weights)")
    }
}
