import SluiceCore
import SluiceRuntimeTestSupport
import Testing

@testable import SluiceStore

// What a controller tick gives `record` so the one writer does less: the record it read (only its generation is
// compared) and the strategy revision it runs (not read again when it matches).
extension StoreRolloutTests {
    @Test(arguments: StoreBackend.all)
    func aTickBasedOnAStaleReadIsRefusedAndWritesNothing(_ backend: StoreBackend) async throws {
        let store = try await storeWithStrategy(backend)
        let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        let (read, _) = try await store.rolloutRecord(started.rollout.id, effects: .failed)
        let stale = try #require(read)
        _ = try await store.record(TickRecord(rolloutID: started.rollout.id, now: Fixtures.epoch)) { rollout, _ in
            step(rollout, to: .paused, weight: 5, type: .paused, now: Fixtures.epoch)
        }
        await #expect {
            _ = try await store.record(TickRecord(rolloutID: started.rollout.id, basedOn: stale, now: Fixtures.epoch)) {
                rollout, _ in step(rollout, to: .progressing, weight: 25, type: .trafficShifted, now: Fixtures.epoch)
            }
        } throws: { ($0 as? StoreError)?.code == .staleState }
        #expect(try await store.rollout(started.rollout.id)?.phase == .paused)
        #expect(try await store.events().map(\.type) == [.rolloutStarted, .paused])
    }

    @Test(arguments: StoreBackend.all)
    func aTickBasedOnAFreshReadDecidesFromItAndRecordsSamples(_ backend: StoreBackend) async throws {
        let store = try await storeWithStrategy(backend)
        let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        let fresh = try #require(try await store.rolloutRecord(started.rollout.id, effects: .failed).record)
        let stored = try #require(try await store.strategy(strategy.key))
        let sample = Sample(check: "error-rate", time: Fixtures.epoch, value: 0.01, verdict: .pass)
        let tick = TickRecord(
            rolloutID: started.rollout.id, basedOn: fresh, strategy: stored, samples: [sample],
            observedAt: Fixtures.epoch, now: Fixtures.epoch)
        let recorded = try await store.record(tick) { rollout, strategy in
            #expect(rollout == fresh.rollout)
            #expect(strategy == stored)
            return step(rollout, to: .paused, weight: 5, type: .paused, now: Fixtures.epoch)
        }
        #expect(recorded?.generation == fresh.generation + 1)
        let after = try #require(try await store.rolloutRecord(started.rollout.id))
        #expect(after.generation == fresh.generation + 1)
        #expect(after.observedAt == Fixtures.epoch)
        #expect(try await store.samples(rollout: started.rollout.id, check: "error-rate") == [sample])
    }

    @Test(arguments: StoreBackend.all)
    func aStrategyOfAnotherRevisionIsNotTrustedAndTheStoredOneIsRead(_ backend: StoreBackend) async throws {
        let store = try await storeWithStrategy(backend)
        let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        let stored = try #require(try await store.strategy(strategy.key))
        var other = stored
        other.revision += 1
        _ = try await store.record(TickRecord(rolloutID: started.rollout.id, strategy: other, now: Fixtures.epoch)) {
            rollout, used in
            #expect(used.revision == stored.revision)
            return step(rollout, to: .paused, weight: 5, type: .paused, now: Fixtures.epoch)
        }
        #expect(try await store.rollout(started.rollout.id)?.phase == .paused)
    }
}

extension StoreRolloutTests {
    @Test(arguments: StoreBackend.all)
    func aTickReadDecodesTheRolloutOnlyWhenItsGenerationMoved(_ backend: StoreBackend) async throws {
        let store = try await storeWithStrategy(backend)
        let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        let seen = try #require(try await store.rolloutRecord(started.rollout.id))
        // Same generation: the caller's copy is the stored rollout (marked here, to see which one comes back).
        var marked = seen
        marked.rollout.holdWaivedBy = "the caller's copy"
        let same = try await store.rolloutRecord(started.rollout.id, effects: .failed, known: marked).record
        #expect(same?.rollout.holdWaivedBy == "the caller's copy")
        #expect(same?.generation == seen.generation)
        // A decision since: the stored rollout is read again.
        _ = try await store.record(TickRecord(rolloutID: started.rollout.id, now: Fixtures.epoch)) { rollout, _ in
            step(rollout, to: .paused, weight: 5, type: .paused, now: Fixtures.epoch)
        }
        let moved = try await store.rolloutRecord(started.rollout.id, effects: .failed, known: marked).record
        #expect(moved?.rollout.phase == .paused)
        #expect(moved?.rollout.holdWaivedBy == nil)
        #expect(moved?.generation == seen.generation + 1)
    }
}

extension StoreRolloutTests {
    @Test(arguments: StoreBackend.all)
    func aTickThatKeepsThePhaseStillRecordsTheNewStateAndObservation(_ backend: StoreBackend) async throws {
        let store = try await storeWithStrategy(backend)
        let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        let later = Fixtures.epoch + .seconds(10)
        let tick = TickRecord(rolloutID: started.rollout.id, observedAt: later, now: later)
        let recorded = try await store.record(tick) {
            rollout, _ in
            var next = rollout
            next.updatedAt = later
            next.desiredWeight = 25
            return Decision(rollout: next, effects: [], events: [])
        }
        #expect(recorded?.rollout.phase == started.rollout.phase)
        let after = try #require(try await store.rolloutRecord(started.rollout.id))
        #expect(after.generation == started.generation + 1)
        #expect(after.observedAt == later)
        #expect(after.rollout.desiredWeight == 25)
        #expect(after.rollout.updatedAt == later)
        // The phase and active columns are as before: the rollout is still found as active and by its phase.
        #expect(try await store.activeRollout(of: strategy.key)?.id == started.rollout.id)
        #expect(try await store.rollouts(phases: [started.rollout.phase]).map(\.id) == [started.rollout.id])
    }
}

// A controller's tick as it reaches the store: the record it read and the strategy it runs given, so the store need
// read neither (on PostgreSQL the whole write is one statement, docs/ha.md "Round trips").
extension StoreRolloutTests {
    /// Reads and records like the driver, `ticks` times from `read`, each tick with `samples(index, time)`.
    func tick(
        _ store: any RolloutStore, from read: RolloutRecord, times ticks: Range<Int>,
        samples: (Int, Timestamp) -> [Sample]
    ) async throws -> RolloutRecord {
        let stored = try #require(try await store.strategy(strategy.key))
        var last = read
        for index in ticks {
            let time = Fixtures.epoch + .seconds(index * 10)
            let seen = try #require(
                try await store.rolloutRecord(read.rollout.id, effects: .failed, known: last).record)
            let tick = TickRecord(
                rolloutID: read.rollout.id, basedOn: seen, strategy: stored, samples: samples(index, time),
                observedAt: time, now: time)
            let recorded = try #require(
                try await store.record(tick) { rollout, _ in
                    var next = rollout
                    next.updatedAt = time
                    return Decision(rollout: next)
                })
            last = RolloutRecord(rollout: recorded.rollout, generation: recorded.generation, observedAt: time)
        }
        return last
    }

    @Test(arguments: StoreBackend.all)
    func aTicksSamplesKeepEachChecksRing(_ backend: StoreBackend) async throws {
        let store = try await backend.make(samplesPerCheck: 3)
        _ = try await store.putStrategy(strategy, now: Fixtures.epoch)
        let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        let read = try #require(try await store.rolloutRecord(started.rollout.id))
        let last = try await tick(store, from: read, times: 0..<5) { index, time in
            [
                Sample(check: "error-rate", time: time, value: Double(index), verdict: .pass),
                Sample(check: "latency", time: time, value: nil, verdict: .noData, reason: "empty result"),
            ]
        }
        #expect(try await store.samples(rollout: started.rollout.id, check: "error-rate").map(\.value) == [2, 3, 4])
        #expect(try await store.samples(rollout: started.rollout.id, check: "latency").count == 3)
        let after = try #require(try await store.rolloutRecord(started.rollout.id))
        #expect(after.generation == read.generation + 5 && after.generation == last.generation)
        #expect(after.observedAt == Fixtures.epoch + .seconds(40))
        #expect(after.rollout.updatedAt == Fixtures.epoch + .seconds(40))
        // Two samples of one check in one tick (no tick takes them, a caller may): the newest three stay.
        _ = try await tick(store, from: last, times: 5..<6) { _, time in
            [
                Sample(check: "error-rate", time: time, value: 50, verdict: .pass),
                Sample(check: "error-rate", time: time, value: 51, verdict: .pass),
            ]
        }
        #expect(try await store.samples(rollout: started.rollout.id, check: "error-rate").map(\.value) == [4, 50, 51])
        #expect(try await store.samples(rollout: started.rollout.id, check: "latency").count == 3)
    }

    @Test(arguments: StoreBackend.all)
    func aTickWithItsStrategyOnAStaleReadIsRefusedAndWritesNoSample(_ backend: StoreBackend) async throws {
        let store = try await storeWithStrategy(backend)
        let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        let stale = try #require(try await store.rolloutRecord(started.rollout.id))
        let stored = try #require(try await store.strategy(strategy.key))
        _ = try await store.record(TickRecord(rolloutID: started.rollout.id, now: Fixtures.epoch)) { rollout, _ in
            step(rollout, to: .paused, weight: 5, type: .paused, now: Fixtures.epoch)
        }
        let later = Fixtures.epoch + .seconds(10)
        let sample = Sample(check: "error-rate", time: later, value: 0.5, verdict: .breach)
        let tick = TickRecord(
            rolloutID: started.rollout.id, basedOn: stale, strategy: stored, samples: [sample], observedAt: later,
            now: later)
        // A decision of the rollout alone, one with an event and an effect, and none: each refused.
        let decisions: [@Sendable (Rollout) -> Decision?] = [
            { rollout in Decision(rollout: rollout) },
            { rollout in
                step(
                    rollout, to: .progressing, weight: 25, type: .trafficShifted, effects: [.setWeight(25)], now: later)
            },
            { _ in nil },
        ]
        for decision in decisions {
            await #expect {
                _ = try await store.record(tick) { rollout, _ in decision(rollout) }
            } throws: { ($0 as? StoreError)?.code == .staleState }
        }
        let after = try #require(try await store.rolloutRecord(started.rollout.id))
        #expect(after.generation == stale.generation + 1 && after.rollout.phase == .paused)
        #expect(after.observedAt == nil)
        #expect(try await store.samples(rollout: started.rollout.id, check: "error-rate").isEmpty)
        #expect(try await store.events().map(\.type) == [.rolloutStarted, .paused])
        #expect(try await store.effects(rollout: started.rollout.id).map(\.effect) == [.setWeight(5)])
    }
}
