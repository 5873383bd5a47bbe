import Logging
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

@testable import SluiceStore

/// Fencing on PostgreSQL (docs/ha.md "Leases and fencing"): every write for a rollout carries the writer's epoch for
/// the rollout's shard, and the database refuses it (`fenced`), writing nothing, once another replica took the lease.
struct PostgresFencingTests {
    let strategy = Fixtures.strategy()
    var shard: Int { Shards.of(strategy.key) }
    static let lease: Duration = .seconds(15)

    /// Two replicas' stores on one database, each fenced by its own lease view; replica a holds the shard.
    struct Replicas {
        let database: PostgresDatabase
        let a: PostgresStore
        let b: PostgresStore
        let viewA: LeaseView
        let viewB: LeaseView

        /// Replica b takes the shard after a's lease expired (set in the past here: the database's clock decides).
        func bTakesOver(_ shard: Int) async throws {
            _ = try await database.cluster.sql(
                "UPDATE shard_leases SET expires_at = now() - interval '1 second' WHERE shard = \(shard)",
                database: database.name)
            let taken = try await b.acquireLeases([shard], replica: "b", duration: PostgresFencingTests.lease)
            #expect(taken[shard] == viewA.epoch(of: shard)! + 1, "the epoch goes up when the holder changes")
            viewB.set(taken)
        }
    }

    func replicas() async throws -> Replicas {
        let database = try await PostgresDatabase.make()
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let viewA = LeaseView(replica: "a")
        let viewB = LeaseView(replica: "b")
        let a = try await PostgresStore.open(database.configuration, leases: viewA, logger: logger)
        let b = try await PostgresStore.open(database.configuration, leases: viewB, logger: logger)
        let held = try await a.acquireLeases([shard], replica: "a", duration: Self.lease)
        #expect(held.count == 1)
        viewA.set(held)
        _ = try await a.putStrategy(strategy, now: Fixtures.epoch)
        return Replicas(database: database, a: a, b: b, viewA: viewA, viewB: viewB)
    }

    func start(_ store: PostgresStore) async throws -> RecordedDecision {
        try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
    }

    func isFenced(_ error: any Error) -> Bool { (error as? StoreError)?.code == .fenced }

    @Test
    func aStartWithAStaleEpochIsRefused() async throws {
        let replicas = try await replicas()
        try await replicas.bTakesOver(shard)
        await #expect { _ = try await start(replicas.a) } throws: { isFenced($0) }
        #expect(try await replicas.a.activeRollouts().isEmpty)
        #expect(try await replicas.a.lastSeq() == 0)
        #expect(try await start(replicas.b).rollout.phase == .progressing, "the new holder starts it")
    }

    @Test
    func aTickAndACommandWithAStaleEpochAreRefused() async throws {
        let replicas = try await replicas()
        let started = try await start(replicas.a)
        let read = try #require(try await replicas.a.rolloutRecord(started.rollout.id))
        try await replicas.bTakesOver(shard)
        // A tick (based on what a read) and a command (no read) of the old holder.
        await #expect {
            _ = try await replicas.a.record(TickRecord(rolloutID: started.rollout.id, basedOn: read, now: Fixtures.epoch)) {
                rollout, _ in step(rollout, to: .progressing, weight: 25, type: .trafficShifted, now: Fixtures.epoch)
            }
        } throws: { isFenced($0) }
        await #expect {
            _ = try await replicas.a.record(TickRecord(rolloutID: started.rollout.id, now: Fixtures.epoch)) {
                rollout, _ in step(rollout, to: .paused, weight: 5, type: .paused, now: Fixtures.epoch)
            }
        } throws: { isFenced($0) }
        let after = try #require(try await replicas.a.rolloutRecord(started.rollout.id))
        #expect(after.generation == read.generation && after.rollout.phase == .progressing, "nothing written")
        #expect(try await replicas.a.events().map(\.type) == [.rolloutStarted])
        // The new holder records.
        let recorded = try await replicas.b.record(TickRecord(rolloutID: started.rollout.id, now: Fixtures.epoch)) {
            rollout, _ in step(rollout, to: .paused, weight: 5, type: .paused, now: Fixtures.epoch)
        }
        #expect(recorded?.rollout.phase == .paused)
    }

    /// A controller's tick (its read and strategy given: one statement on PostgreSQL) with samples, with and without
    /// events, on a stale epoch: refused, and neither its state nor a sample written.
    @Test
    func aTickWithItsStrategyAndSamplesWithAStaleEpochWritesNothing() async throws {
        let replicas = try await replicas()
        let started = try await start(replicas.a)
        let read = try #require(try await replicas.a.rolloutRecord(started.rollout.id))
        let stored = try #require(try await replicas.a.strategy(strategy.key))
        try await replicas.bTakesOver(shard)
        let later = Fixtures.epoch + .seconds(10)
        let tick = TickRecord(
            rolloutID: started.rollout.id, basedOn: read, strategy: stored,
            samples: [Sample(check: "error-rate", time: later, value: 0.5, verdict: .breach)], observedAt: later,
            now: later)
        let decisions: [@Sendable (Rollout) -> Decision?] = [
            { rollout in Decision(rollout: rollout) },
            { rollout in step(rollout, to: .progressing, weight: 25, type: .trafficShifted, now: later) },
            { _ in nil },
        ]
        for decision in decisions {
            await #expect {
                _ = try await replicas.a.record(tick) { rollout, _ in decision(rollout) }
            } throws: { isFenced($0) }
        }
        let after = try #require(try await replicas.b.rolloutRecord(started.rollout.id))
        #expect(after.generation == read.generation && after.observedAt == nil, "nothing written")
        #expect(try await replicas.b.samples(rollout: started.rollout.id, check: "error-rate").isEmpty)
        #expect(try await replicas.b.events().map(\.type) == [.rolloutStarted])
        // The new holder records the same tick.
        let recorded = try await replicas.b.record(tick) { rollout, _ in Decision(rollout: rollout) }
        #expect(recorded?.generation == read.generation + 1)
        #expect(try await replicas.b.samples(rollout: started.rollout.id, check: "error-rate").count == 1)
    }

    @Test
    func confirmingOrFailingAnEffectWithAStaleEpochIsRefused() async throws {
        let replicas = try await replicas()
        let started = try await start(replicas.a)
        let effect = try #require(started.effects.first)
        try await replicas.bTakesOver(shard)
        await #expect { try await replicas.a.confirmEffect(effect.id, now: Fixtures.epoch) } throws: { isFenced($0) }
        await #expect {
            try await replicas.a.failEffect(effect.id, message: "router down", now: Fixtures.epoch)
        } throws: { isFenced($0) }
        #expect(try await replicas.a.effects(rollout: started.rollout.id).map(\.status) == [.pending], "left pending")
        try await replicas.b.confirmEffect(effect.id, now: Fixtures.epoch)
        #expect(try await replicas.b.effects(rollout: started.rollout.id).map(\.status) == [.confirmed])
    }

    @Test
    func aReplicaThatDoesNotHoldTheShardWritesNothingForIt() async throws {
        let replicas = try await replicas()
        let started = try await start(replicas.a)
        // b never took the shard: refused before the database is asked.
        await #expect {
            _ = try await replicas.b.record(TickRecord(rolloutID: started.rollout.id, now: Fixtures.epoch)) {
                rollout, _ in step(rollout, to: .paused, weight: 5, type: .paused, now: Fixtures.epoch)
            }
        } throws: { isFenced($0) }
        // b claims a's epoch without holding it in the table: the row names a, so refused too.
        replicas.viewB.set(replicas.viewA.shards)
        await #expect {
            _ = try await replicas.b.record(TickRecord(rolloutID: started.rollout.id, now: Fixtures.epoch)) {
                rollout, _ in step(rollout, to: .paused, weight: 5, type: .paused, now: Fixtures.epoch)
            }
        } throws: { isFenced($0) }
    }

    @Test
    func renewingKeepsOwnLeasesAndReportsOnesTakenMeanwhile() async throws {
        let replicas = try await replicas()
        let (renewed, table) = try await replicas.a.renewLeases(
            replicas.viewA.shards, replica: "a", name: "host-a", duration: Self.lease)
        #expect(renewed == [shard])
        #expect(table.leases.count == Shards.count && table.liveReplicas == ["a"])
        #expect(table.leases[shard].holder == "a" && !table.leases[shard].expired)
        // A live lease cannot be taken by another replica.
        #expect(try await replicas.b.acquireLeases([shard], replica: "b", duration: Self.lease).isEmpty)
        try await replicas.bTakesOver(shard)
        let (stale, _) = try await replicas.a.renewLeases(
            replicas.viewA.shards, replica: "a", name: "host-a", duration: Self.lease)
        #expect(stale.isEmpty, "a's epoch is stale: not renewed, so a learns it lost the shard")
        let (_, both) = try await replicas.b.renewLeases(
            replicas.viewB.shards, replica: "b", name: "host-b", duration: Self.lease)
        #expect(both.liveReplicas == ["a", "b"])
        // Giving back and leaving: the shard is free again and b is no longer a live replica.
        try await replicas.b.releaseLeases(replicas.viewB.shards, replica: "b", leaving: true)
        let (_, after) = try await replicas.a.renewLeases([:], replica: "a", name: "host-a", duration: Self.lease)
        #expect(after.leases[shard].isFree)
        #expect(after.liveReplicas == ["a"])
    }
}
