import GRDB
import SluiceCore
import SluiceRuntimeTestSupport
import Testing

@testable import SluiceStore

/// A hand-made start decision: Progressing at 5 %, one event, one effect.
func startDecision(_ id: String, _ stored: StoredStrategy, _ pools: Pools?, now: Timestamp) -> Decision {
    let rollout = Rollout(
        id: id, strategy: stored.key, strategyRevision: stored.revision, version: "v2", phase: .progressing,
        desiredWeight: 5, pools: pools, createdAt: now
    )
    return Decision(
        rollout: rollout, effects: [.setWeight(5)],
        events: [Event(time: now, rollout: id, strategy: stored.key, type: .rolloutStarted, message: "started")]
    )
}

/// A decision that moves `rollout` to `phase` at `weight` with one event of `type`.
func step(
    _ rollout: Rollout, to phase: Phase, weight: Int, type: EventType, effects: [Effect] = [], now: Timestamp
) -> Decision {
    var next = rollout
    next.phase = phase
    next.desiredWeight = weight
    next.updatedAt = now
    return Decision(
        rollout: next, effects: effects,
        events: [
            Event(time: now, rollout: next.id, strategy: next.strategy, type: type, weight: weight, message: "\(type)")
        ]
    )
}

@Suite struct StoreRolloutTests {
    let strategy = Fixtures.strategy()

    func storeWithStrategy(_ backend: StoreBackend) async throws -> any RolloutStore {
        let store = try await backend.make()
        _ = try await store.putStrategy(strategy, now: Fixtures.epoch)
        return store
    }

    /// `sluice strategy delete`: refused while a rollout is active; afterwards the strategy is gone from every read
    /// and start, its rollouts, revisions and events stay, and applying it again creates it as the next revision.
    @Test(arguments: StoreBackend.all)
    func aDeletedStrategyIsGoneButItsHistoryStays(_ backend: StoreBackend) async throws {
        let store = try await storeWithStrategy(backend)
        let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        await #expect {
            _ = try await store.deleteStrategy(strategy.key, now: Fixtures.epoch)
        } throws: { ($0 as? StoreError)?.code == .activeRollout && "\($0)".contains(started.rollout.id) }
        _ = try await store.record(TickRecord(rolloutID: started.rollout.id, now: Fixtures.epoch)) { rollout, _ in
            step(rollout, to: .rolledBack, weight: 0, type: .rolledBack, now: Fixtures.epoch)
        }

        let deleted = try await store.deleteStrategy(strategy.key, now: Fixtures.epoch + .seconds(1))
        #expect(deleted.revision == 1)
        #expect(try await store.strategy(strategy.key) == nil)
        #expect(try await store.strategies().isEmpty)
        #expect(try await store.strategy(strategy.key, revision: 1)?.strategy == strategy, "the rollout's revision")
        #expect(try await store.rollouts(strategy: strategy.key).map(\.id) == [started.rollout.id])
        #expect(try await store.events().map(\.type).last == .rolledBack)
        await #expect {
            _ = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
                startDecision(id, stored, pools, now: Fixtures.epoch)
            }
        } throws: { ($0 as? StoreError)?.code == .notFound }
        await #expect {
            _ = try await store.deleteStrategy(strategy.key, now: Fixtures.epoch)
        } throws: { ($0 as? StoreError)?.code == .notFound }

        // Applied again, even unchanged: created anew, numbered after the deleted revision.
        let (again, outcome) = try await store.putStrategy(strategy, now: Fixtures.epoch + .seconds(2))
        #expect(outcome == .created)
        #expect(again.revision == 2)
        #expect(try await store.strategies().map(\.revision) == [2])
    }

    @Test(arguments: StoreBackend.all)
    func startAssignsDailyIDsAndAllowsOneActiveRolloutPerStrategy(_ backend: StoreBackend) async throws {
        let store = try await storeWithStrategy(backend)
        let first = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        #expect(first.rollout.id == "r-20261124-0001")
        #expect(first.events.map(\.seq) == [1])
        #expect(first.effects.map(\.effect) == [.setWeight(5)])
        #expect(first.rollout.pools == Pools(stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80"]))

        await #expect {
            _ = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
                startDecision(id, stored, pools, now: Fixtures.epoch)
            }
        } throws: { ($0 as? StoreError)?.code == .activeRollout && "\($0)".contains("r-20261124-0001") }

        let rolledBack = try await store.record(TickRecord(rolloutID: first.rollout.id, now: Fixtures.epoch)) {
            rollout, _ in
            step(rollout, to: .rolledBack, weight: 0, type: .rolledBack, now: Fixtures.epoch)
        }
        #expect(rolledBack?.generation == 2)
        #expect(try await store.activeRollout(of: strategy.key) == nil)

        let second = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        #expect(second.rollout.id == "r-20261124-0002")
        #expect(try await store.activeRollouts().map(\.id) == ["r-20261124-0002"])
        #expect(try await store.rollouts(strategy: strategy.key).map(\.id) == ["r-20261124-0002", "r-20261124-0001"])
        #expect(try await store.rollouts(phases: [.rolledBack]).map(\.id) == ["r-20261124-0001"])
        #expect(try await store.rollouts(phases: [.succeeded, .failed]).isEmpty)
    }

    @Test(arguments: StoreBackend.all)
    func startOfAnUnknownStrategyIsNotFound(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        await #expect {
            _ = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
                startDecision(id, stored, pools, now: Fixtures.epoch)
            }
        } throws: { ($0 as? StoreError)?.code == .notFound }
        await #expect {
            _ = try await store.record(TickRecord(rolloutID: "r-missing", now: Fixtures.epoch)) { rollout, _ in
                Decision(rollout: rollout)
            }
        } throws: { ($0 as? StoreError)?.code == .notFound }
    }

    @Test(arguments: StoreBackend.all)
    func aDecisionOnAStaleGenerationIsRefusedAndWritesNothing(_ backend: StoreBackend) async throws {
        let store = try await storeWithStrategy(backend)
        let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        _ = try await store.record(TickRecord(rolloutID: started.rollout.id, now: Fixtures.epoch)) { rollout, _ in
            step(rollout, to: .paused, weight: 5, type: .paused, now: Fixtures.epoch)
        }
        await #expect {
            // Based on the record the start returned: one decision older than the stored rollout.
            let read = RolloutRecord(rollout: started.rollout, generation: started.generation, observedAt: nil)
            let tick = TickRecord(rolloutID: started.rollout.id, basedOn: read, now: Fixtures.epoch)
            _ = try await store.record(tick) { rollout, _ in
                step(
                    rollout, to: .progressing, weight: 25, type: .trafficShifted, effects: [.setWeight(25)],
                    now: Fixtures.epoch)
            }
        } throws: { ($0 as? StoreError)?.code == .staleState }
        #expect(try await store.rollout(started.rollout.id)?.phase == .paused)
        #expect(try await store.events().map(\.type) == [.rolloutStarted, .paused])
        #expect(try await store.effects(rollout: started.rollout.id).map(\.effect) == [.setWeight(5)])
    }

    @Test(arguments: StoreBackend.all)
    func aDecisionWhoseEventsBelongElsewhereIsRefusedWhole(_ backend: StoreBackend) async throws {
        let store = try await storeWithStrategy(backend)
        let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        await #expect {
            _ = try await store.record(TickRecord(rolloutID: started.rollout.id, now: Fixtures.epoch)) { rollout, _ in
                var decision = step(rollout, to: .paused, weight: 5, type: .paused, now: Fixtures.epoch)
                decision.events[0].rollout = "r-other"
                return decision
            }
        } throws: { ($0 as? StoreError)?.code == .invalidDecision }
        #expect(try await store.rollout(started.rollout.id)?.phase == .progressing)
        #expect(try await store.lastSeq() == 1)
    }

    @Test(arguments: StoreBackend.all)
    func promotionSwapsThePoolRolesForTheNextRollout(_ backend: StoreBackend) async throws {
        let store = try await storeWithStrategy(backend)
        let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        _ = try await store.record(TickRecord(rolloutID: started.rollout.id, now: Fixtures.epoch)) { rollout, _ in
            var decision = step(rollout, to: .succeeded, weight: 0, type: .promoted, now: Fixtures.epoch)
            decision.rollout.pools = Pools(stable: ["10.0.0.2:80"], canary: ["10.0.0.1:80"])  // as `decide` swaps them
            return decision
        }
        #expect(try await store.poolRoles(strategy.key) == Pools(stable: ["10.0.0.2:80"], canary: ["10.0.0.1:80"]))
        let next = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        #expect(next.rollout.pools == Pools(stable: ["10.0.0.2:80"], canary: ["10.0.0.1:80"]))

        // Roles recorded for other pools no longer apply once the strategy names new ones.
        let repooled = Fixtures.strategy(target: .upstreams(stable: ["10.0.1.1:80"], canary: ["10.0.1.2:80"]))
        _ = try await store.putStrategy(repooled, now: Fixtures.epoch)
        #expect(try await store.poolRoles(strategy.key) == Pools(stable: ["10.0.1.1:80"], canary: ["10.0.1.2:80"]))
    }
}

@Suite struct StoreBakeTests {
    let strategy = Fixtures.strategy()

    /// Baking is persisted as its own phase: active (a new rollout of the strategy is a conflict), listed by phase,
    /// read back whole with its bake start; the pool roles change only when the bake ends Succeeded, so a bake
    /// that rolls back leaves the next rollout where the previous version is stable.
    @Test(arguments: StoreBackend.all)
    func bakingIsActiveAndOnlySuccessRecordsThePoolRoles(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        _ = try await store.putStrategy(strategy, now: Fixtures.epoch)
        let original = try #require(try await store.poolRoles(strategy.key))
        let swapped = Pools(stable: original.canary, canary: original.stable)
        let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        let id = started.rollout.id
        _ = try await store.record(TickRecord(rolloutID: id, now: Fixtures.epoch)) { rollout, _ in
            var decision = step(rollout, to: .baking, weight: 0, type: .bakeStarted, now: Fixtures.epoch)
            decision.rollout.pools = swapped
            decision.rollout.bakeStartedAt = Fixtures.epoch
            return decision
        }
        let baking = try #require(try await store.rollout(id))
        #expect(baking.phase == .baking)
        #expect(baking.bakeStartedAt == Fixtures.epoch)
        #expect(try await store.activeRollout(of: strategy.key)?.id == id)
        #expect(try await store.activeRollouts().map(\.id) == [id])
        #expect(try await store.rollouts(phases: [.baking]).map(\.id) == [id])
        #expect(try await store.rolloutCountsByPhase()[.baking] == 1)
        #expect(try await store.poolRoles(strategy.key) == original)

        // The bake breached: the pools swap back and the rollout ends RolledBack; the roles stay as they were.
        _ = try await store.record(TickRecord(rolloutID: id, now: Fixtures.epoch)) { rollout, _ in
            var decision = step(rollout, to: .rolledBack, weight: 0, type: .rolledBack, now: Fixtures.epoch)
            decision.rollout.pools = original
            return decision
        }
        #expect(try await store.activeRollout(of: strategy.key) == nil)
        #expect(try await store.poolRoles(strategy.key) == original)

        // A bake that passes records the swap for the next rollout.
        let second = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        _ = try await store.record(TickRecord(rolloutID: second.rollout.id, now: Fixtures.epoch)) { rollout, _ in
            var decision = step(rollout, to: .baking, weight: 0, type: .bakeStarted, now: Fixtures.epoch)
            decision.rollout.pools = swapped
            return decision
        }
        #expect(try await store.poolRoles(strategy.key) == original)
        _ = try await store.record(TickRecord(rolloutID: second.rollout.id, now: Fixtures.epoch)) { rollout, _ in
            step(rollout, to: .succeeded, weight: 0, type: .promoted, now: Fixtures.epoch)
        }
        #expect(try await store.poolRoles(strategy.key) == swapped)
    }
}
