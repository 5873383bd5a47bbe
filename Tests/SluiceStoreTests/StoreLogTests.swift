import GRDB
import SluiceCore
import SluiceRuntimeTestSupport
import Testing

@testable import SluiceStore

@Suite struct StoreLogTests {
    let strategy = Fixtures.strategy()

    func started(_ store: any RolloutStore, name: String = "checkout") async throws -> Rollout {
        let strategy = Fixtures.strategy(name: name)
        _ = try await store.putStrategy(strategy, now: Fixtures.epoch)
        return try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }.rollout
    }

    @Test(arguments: StoreBackend.all)
    func theEventLogRefusesUpdatesAndDeletes(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        _ = try await started(store)
        for forgery in ["UPDATE events SET type = 'Forged'", "DELETE FROM events"] {
            await #expect("\(forgery)") {
                try await backend.execute(store, forgery)
            } throws: { "\($0)".contains("the event log is append-only") }
        }
        #expect(try await store.events().map(\.type) == [.rolloutStarted])
    }

    @Test(arguments: StoreBackend.all)
    func eventsAreFilteredAndPagedBySeq(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        let a = try await started(store, name: "a")
        let b = try await started(store, name: "b")
        for index in 0..<3 {
            for rollout in [a, b] {
                _ = try await store.record(TickRecord(rolloutID: rollout.id, now: Fixtures.epoch)) { current, _ in
                    step(current, to: .progressing, weight: 5 + index, type: .trafficShifted, now: Fixtures.epoch)
                }
            }
        }
        let all = try await store.events()
        #expect(all.map(\.seq) == Array(1...8))
        #expect(try await store.events(EventQuery(rollout: a.id)).map(\.seq) == [1, 3, 5, 7])
        #expect(try await store.events(EventQuery(strategy: b.strategy)).map(\.seq) == [2, 4, 6, 8])
        #expect(try await store.events(EventQuery(after: 3, limit: 2)).map(\.seq) == [4, 5])
        #expect(try await store.events(EventQuery(after: 5, rollout: a.id)).map(\.weight) == [7])
        #expect(try await store.lastSeq() == 8)
    }

    @Test(arguments: StoreBackend.all)
    func samplesAreARingPerRolloutAndCheck(_ backend: StoreBackend) async throws {
        let store = try await backend.make(samplesPerCheck: 3)
        let rollout = try await started(store)
        for index in 0..<5 {
            let time = Fixtures.epoch + .seconds(index * 10)
            let samples = [
                Sample(check: "error-rate", time: time, value: Double(index), verdict: .pass),
                Sample(check: "latency", time: time, value: nil, verdict: .noData, reason: "empty result"),
            ]
            _ = try await store.record(TickRecord(rolloutID: rollout.id, samples: samples, now: time)) { current, _ in
                Decision(rollout: current)
            }
        }
        #expect(try await store.samples(rollout: rollout.id, check: "error-rate").map(\.value) == [2, 3, 4])
        #expect(try await store.samples(rollout: rollout.id, check: "latency").count == 3)
        #expect(try await store.samples(rollout: "r-other", check: "error-rate").isEmpty)
    }

    @Test(arguments: StoreBackend.all)
    func effectsArePendingUntilConfirmedAndAFailureAbandonsTheRest(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        let rollout = try await started(store)
        let recorded = try #require(
            try await store.record(TickRecord(rolloutID: rollout.id, now: Fixtures.epoch)) { current, _ in
                step(
                    current, to: .progressing, weight: 25, type: .trafficShifted,
                    effects: [.deployCanary(version: "v2", weight: 25), .setWeight(25)], now: Fixtures.epoch)
            }
        )
        #expect(try await store.rolloutsWithPendingEffects() == [rollout.id])
        let first = try await store.effects(rollout: rollout.id, status: .pending)
        #expect(first.map(\.effect) == [.setWeight(5), .deployCanary(version: "v2", weight: 25), .setWeight(25)])
        try await store.confirmEffect(first[0].id, now: Fixtures.epoch)
        try await store.failEffect(recorded.effects[0].id, message: "503 from the API", now: Fixtures.epoch)
        // Settling is one-way: a confirmed effect stays confirmed.
        try await store.failEffect(first[0].id, message: "late", now: Fixtures.epoch)
        let statuses = try await store.effects(rollout: rollout.id).map(\.status)
        #expect(statuses == [.confirmed, .failed, .abandoned])
        #expect(try await store.rolloutsWithPendingEffects().isEmpty)

        let failed = try await store.effects(rollout: rollout.id, status: .failed)
        #expect(failed.map(\.message) == ["503 from the API"])
        let report = TickRecord(rolloutID: rollout.id, reportedFailures: failed.map(\.id), now: Fixtures.epoch)
        _ = try await store.record(report) {
            current, _ in Decision(rollout: current)
        }
        #expect(try await store.effects(rollout: rollout.id, status: .failed).isEmpty)
        #expect(try await store.effects(rollout: rollout.id, status: .reported).map(\.id) == failed.map(\.id))
    }

    @Test(arguments: StoreBackend.all)
    func aRollbackSupersedesPendingEffects(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        let rollout = try await started(store)
        let rollback = try #require(
            try await store.record(TickRecord(rolloutID: rollout.id, now: Fixtures.epoch)) { current, _ in
                step(
                    current, to: .rollingBack, weight: 0, type: .rollbackStarted,
                    effects: [.setWeight(0), .scaleDownCanary], now: Fixtures.epoch)
            }
        )
        #expect(rollback.supersededEffects.count == 1)
        let pending = try await store.effects(rollout: rollout.id, status: .pending)
        #expect(pending.map(\.effect) == [.setWeight(0), .scaleDownCanary])
        #expect(try await store.effects(rollout: rollout.id, status: .superseded).map(\.effect) == [.setWeight(5)])

        // A later decision while already rolling back supersedes nothing.
        let again = try await store.record(TickRecord(rolloutID: rollout.id, now: Fixtures.epoch)) { current, _ in
            step(current, to: .rolledBack, weight: 0, type: .rolledBack, now: Fixtures.epoch)
        }
        #expect(again?.supersededEffects == [])
        #expect(try await store.effects(rollout: rollout.id, status: .pending).count == 2)
    }

    @Test(arguments: StoreBackend.all)
    func theStreamReplaysTheBacklogThenFollowsWithoutGapOrDuplicate(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        let a = try await started(store, name: "a")
        let b = try await started(store, name: "b")
        let writes = 40
        // Writers race the subscription on purpose: the backlog and the live events must join exactly.
        let writers = Task {
            for index in 0..<writes {
                for rollout in [a, b] {
                    _ = try await store.record(TickRecord(rolloutID: rollout.id, now: Fixtures.epoch)) { current, _ in
                        step(current, to: .progressing, weight: index, type: .trafficShifted, now: Fixtures.epoch)
                    }
                }
            }
        }
        var all: [Int64] = []
        for await event in store.eventStream(EventQuery()) {
            all.append(event.seq)
            if all.count == 2 + 2 * writes { break }
        }
        try await writers.value
        #expect(all == Array(1...Int64(2 + 2 * writes)))

        var onlyB: [Int64] = []
        for await event in store.eventStream(EventQuery(after: 10, rollout: b.id)) {
            onlyB.append(event.seq)
            if event.seq == 2 + 2 * Int64(writes) { break }
        }
        #expect(onlyB == Array(stride(from: 12, through: Int64(2 + 2 * writes), by: 2)))
    }
}

// Retention (`retention.samples` in sluice.yaml): the samples of finished rollouts go, the event log stays.
extension StoreLogTests {
    @Test(arguments: StoreBackend.all)
    func pruningDropsTheSamplesOfRolloutsFinishedBeforeTheCutoffAndKeepsTheLog(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        let old = try await started(store, name: "old")
        let recent = try await started(store, name: "recent")
        let running = try await started(store, name: "running")
        func tick(_ rollout: Rollout, at time: Timestamp, to phase: Phase?) async throws {
            let sample = Sample(check: "error-rate", time: time, value: 0.01, verdict: .pass)
            _ = try await store.record(TickRecord(rolloutID: rollout.id, samples: [sample], now: time)) { current, _ in
                guard let phase else { return Decision(rollout: current) }
                return step(current, to: phase, weight: 0, type: EventType(phase.rawValue), now: time)
            }
        }
        for rollout in [old, recent, running] {
            try await tick(rollout, at: Fixtures.epoch + .seconds(10), to: nil)
        }
        try await tick(old, at: Fixtures.epoch + .seconds(3_600), to: .succeeded)
        try await tick(recent, at: Fixtures.epoch + .seconds(3 * 3_600), to: .rolledBack)
        try await tick(running, at: Fixtures.epoch + .seconds(3 * 3_600), to: nil)
        let log = try await store.events()
        let cutoff = Fixtures.epoch + .seconds(2 * 3_600)

        #expect(try await store.pruneSamples(ofRolloutsFinishedBefore: cutoff) == 2)
        #expect(try await store.samples(rollout: old.id, check: "error-rate").isEmpty)
        #expect(try await store.samples(rollout: recent.id, check: "error-rate").count == 2, "finished after it")
        #expect(try await store.samples(rollout: running.id, check: "error-rate").count == 2, "still running")
        #expect(try await store.events() == log, "the event log is kept whole")
        #expect(try await store.rollout(old.id)?.phase == .succeeded)
        #expect(try await store.pruneSamples(ofRolloutsFinishedBefore: cutoff) == 0)
        // Much later, every finished rollout's samples go; the running one keeps its own.
        #expect(try await store.pruneSamples(ofRolloutsFinishedBefore: Fixtures.epoch + .seconds(100 * 3_600)) == 2)
        #expect(try await store.samples(rollout: running.id, check: "error-rate").count == 2)
    }
}
