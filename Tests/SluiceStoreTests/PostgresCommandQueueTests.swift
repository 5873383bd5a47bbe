import Logging
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

@testable import SluiceStore

/// The commands queue on PostgreSQL (docs/ha.md "Commands on any replica"): a replica that does not drive a rollout
/// queues a command; the owner carries it out in the transaction that records its decision, fenced, so it is applied
/// once or not at all; the replica that queued it reads the outcome back, or withdraws it.
struct PostgresCommandQueueTests {
    let fencing = PostgresFencingTests()
    var key: StrategyKey { fencing.strategy.key }

    func pause(_ store: PostgresStore, _ id: String, carrying queued: Int64) async throws -> RecordedDecision? {
        try await store.record(TickRecord(rolloutID: id, now: Fixtures.epoch), carrying: queued) { rollout, _ in
            step(rollout, to: .paused, weight: 5, type: .paused, now: Fixtures.epoch)
        }
    }

    @Test
    func theOwnerCarriesOutAQueuedCommandOnceAndTheSenderReadsItBack() async throws {
        let replicas = try await fencing.replicas()
        let started = try await fencing.start(replicas.a)
        let id = started.rollout.id
        // b does not hold the shard: it queues the command, and a hears of it.
        let heard = replicas.a.commandNotices()
        let queued = try await replicas.b.enqueue(
            .command(rolloutID: id, .pause(actor: "alice")), strategy: key, requestID: "req-1", traceparent: nil,
            now: Fixtures.epoch)
        // The notice holds the whole command, so the owner needs no read to carry it out.
        var notices = heard.makeAsyncIterator()
        var notified: QueuedCommand?
        while notified == nil, let notice = await notices.next() {
            if case .command(let command) = notice { notified = command }
        }
        #expect(notified?.id == queued && notified?.strategy == key && notified?.requestID == "req-1")
        #expect(notified?.request == .command(rolloutID: id, .pause(actor: "alice")))
        #expect(try await replicas.b.outcome(ofCommand: queued) == nil, "queued, not carried out")
        let pending = try await replicas.a.pendingCommands(inShards: [fencing.shard])
        #expect(pending.map(\.id) == [queued])
        #expect(pending.first?.request == .command(rolloutID: id, .pause(actor: "alice")))
        #expect(pending.first?.requestID == "req-1" && pending.first?.strategy == key)
        #expect(try await replicas.a.pendingCommands(inShards: [(fencing.shard + 1) % Shards.count]).isEmpty)

        // b cannot carry it out (fenced, nothing written); a does, once.
        await #expect { _ = try await pause(replicas.b, id, carrying: queued) } throws: { fencing.isFenced($0) }
        let recorded = try #require(try await pause(replicas.a, id, carrying: queued))
        #expect(try await replicas.b.outcome(ofCommand: queued) == .applied(recorded.rollout))
        await #expect { _ = try await pause(replicas.a, id, carrying: queued) } throws: {
            ($0 as? StoreError)?.code == .staleState
        }
        #expect(try await replicas.a.events().map(\.type) == [.rolloutStarted, .paused], "applied exactly once")
        #expect(try await replicas.a.pendingCommands(inShards: [fencing.shard]).isEmpty)
        // Withdrawing it now gives what the owner made of it.
        #expect(try await replicas.b.cancelCommand(queued, now: Fixtures.epoch) == .applied(recorded.rollout))
    }

    @Test
    func aWithdrawnCommandIsNeverCarriedOutAndARefusalIsFenced() async throws {
        let replicas = try await fencing.replicas()
        let started = try await fencing.start(replicas.a)
        let id = started.rollout.id
        let withdrawn = try await replicas.b.enqueue(
            .command(rolloutID: id, .pause(actor: "alice")), strategy: key, requestID: nil, traceparent: nil,
            now: Fixtures.epoch)
        #expect(try await replicas.b.cancelCommand(withdrawn, now: Fixtures.epoch) == .cancelled)
        await #expect { _ = try await pause(replicas.a, id, carrying: withdrawn) } throws: {
            ($0 as? StoreError)?.code == .staleState
        }
        #expect(try await replicas.a.events().map(\.type) == [.rolloutStarted], "nothing written")

        // A refusal is the owner's: b's is fenced; a's is the outcome.
        let refused = try await replicas.b.enqueue(
            .command(rolloutID: id, .resume(actor: "alice")), strategy: key, requestID: nil, traceparent: nil,
            now: Fixtures.epoch)
        let command = try #require(try await replicas.a.pendingCommands(inShards: [fencing.shard]).first)
        await #expect {
            try await replicas.b.refuseCommand(command, code: "conflict", message: "not paused", now: Fixtures.epoch)
        } throws: { fencing.isFenced($0) }
        #expect(try await replicas.b.outcome(ofCommand: refused) == nil)
        try await replicas.a.refuseCommand(command, code: "conflict", message: "not paused", now: Fixtures.epoch)
        #expect(try await replicas.b.outcome(ofCommand: refused) == .refused(code: "conflict", message: "not paused"))

        // A queued start is carried out with the start's transaction.
        _ = try await replicas.a.record(TickRecord(rolloutID: id, now: Fixtures.epoch)) { rollout, _ in
            step(rollout, to: .rolledBack, weight: 0, type: .rolledBack, now: Fixtures.epoch)
        }
        let start = try await replicas.b.enqueue(
            .start(version: "v3", actor: "ci", supersede: false), strategy: key, requestID: nil, traceparent: nil,
            now: Fixtures.epoch)
        let second = try await replicas.a.startRollout(strategy: key, now: Fixtures.epoch, carrying: start) {
            id, stored, pools in startDecision(id, stored, pools, now: Fixtures.epoch)
        }
        #expect(try await replicas.b.outcome(ofCommand: start) == .applied(second.rollout))
    }
}
