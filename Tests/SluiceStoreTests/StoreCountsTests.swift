import SluiceCore
import SluiceRuntimeTestSupport
import Testing

@testable import SluiceStore

/// The counts and the newest rollout of each strategy that `/metrics` reads, over more rollouts than
/// a listing returns (1,000).
@Suite struct StoreCountsTests {
    /// What a seeded store holds, as the seeding wrote it.
    struct Seeded {
        var store: any RolloutStore
        var counts: [Phase: Int] = [:]
        var newest: [StrategyKey: Rollout] = [:]
    }

    /// Starts a rollout of `key` created at `now` and moves it to `phase` (Progressing stays as started).
    static func rollout(_ store: any RolloutStore, _ key: StrategyKey, _ phase: Phase, now: Timestamp) async throws
        -> Rollout
    {
        let started = try await store.startRollout(strategy: key, now: now) { id, stored, pools in
            startDecision(id, stored, pools, now: now)
        }.rollout
        guard phase != started.phase else { return started }
        let weight = phase.isTerminal ? 0 : 25
        return try await store.record(TickRecord(rolloutID: started.id, now: now)) { rollout, _ in
            step(rollout, to: phase, weight: weight, type: EventType(phase.rawValue), now: now)
        }!.rollout
    }

    /// 1,250 rollouts of three strategies cycling through the terminal phases, the last of `web/a` left
    /// Paused and of `web/b` Progressing; `web/old` has one Paused rollout, older than all of them.
    static func seeded(_ backend: StoreBackend) async throws -> Seeded {
        var seeded = Seeded(store: try await backend.make())
        let keys = ["old", "a", "b", "c"].map { StrategyKey(namespace: "web", name: $0) }
        for key in keys {
            _ = try await seeded.store.putStrategy(Fixtures.strategy(name: key.name, namespace: key.namespace), now: Fixtures.epoch)
        }
        func add(_ key: StrategyKey, _ phase: Phase, at second: Int64) async throws {
            let now = Timestamp(millisecondsSinceEpoch: Fixtures.epoch.millisecondsSinceEpoch + second * 1000)
            let rollout = try await rollout(seeded.store, key, phase, now: now)
            seeded.counts[rollout.phase, default: 0] += 1
            seeded.newest[key] = rollout
        }
        try await add(keys[0], .paused, at: 0)
        let terminal: [Phase] = [.succeeded, .rolledBack, .failed, .succeeded]
        for index in 1...1_245 {
            try await add(keys[1 + index % 3], terminal[index % terminal.count], at: Int64(index))
        }
        // Two of `web/c` in the same millisecond: the higher id is the newer.
        try await add(keys[3], .failed, at: 1_246)
        try await add(keys[3], .succeeded, at: 1_246)
        try await add(keys[1], .paused, at: 1_247)
        try await add(keys[2], .progressing, at: 1_248)
        return seeded
    }

    @Test(arguments: StoreBackend.all)
    func countsEveryRolloutByPhaseAndFindsTheNewestOfEachStrategy(_ backend: StoreBackend) async throws {
        let seeded = try await Self.seeded(backend)
        let counts = try await seeded.store.rolloutCountsByPhase()
        #expect(counts.values.reduce(0, +) == 1_250)
        #expect(counts == seeded.counts)
        #expect(counts[.paused] == 2 && counts[.progressing] == 1)
        #expect(counts[.failed] == 312, "1,245 cycled: 311 Failed, plus one of web/c")

        let newest = try await seeded.store.newestRolloutPerStrategy()
        #expect(newest.map(\.strategy.name) == ["a", "b", "c", "old"], "ordered by strategy key")
        #expect(newest == seeded.newest.keys.sorted().map { seeded.newest[$0]! })
        #expect(newest.map(\.phase) == [.paused, .progressing, .succeeded, .paused])
        #expect(newest.first { $0.strategy.name == "old" }?.id == "r-20261124-0001")
    }

    @Test(arguments: StoreBackend.all)
    func anEmptyStoreHasNoCountsAndNoNewest(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        #expect(try await store.rolloutCountsByPhase().isEmpty)
        #expect(try await store.newestRolloutPerStrategy().isEmpty)
    }
}
