import Logging
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

@testable import SluiceStore

/// What a controller's tick costs PostgreSQL in round trips (docs/ha.md "Round trips"), counted where postgres-nio
/// receives them: it sends every statement (BEGIN and COMMIT included) on its own, with the extended protocol, and
/// the server's answer starts with BindComplete. (Its ReadyForQuery, last, may come after the caller resumed: the
/// rows are handed over at CommandComplete.)
struct PostgresRoundTripTests {
    let strategy = Fixtures.strategy()

    /// A tick as `RolloutDriver` makes it, on a replica's fenced store: its read (the rollout and its failed effects,
    /// known since the last tick) and its record (based on that read, with the strategy and two checks' samples);
    /// before them, the rollout's start and the confirmation of its effect.
    @Test
    func aTicksReadAndRecordAreOneStatementEach() async throws {
        let database = try await PostgresDatabase.make()
        let counter = StatementCounter()
        var logger = Logger(label: "round-trips") { _ in counter }
        logger.logLevel = .trace
        let view = LeaseView(replica: "a")
        let store = try await PostgresStore.open(
            database.configuration, samplesPerCheck: 3, leases: view, logger: logger)
        view.set(try await store.acquireLeases([Shards.of(strategy.key)], replica: "a", duration: .seconds(15)))
        let stored = try await store.putStrategy(strategy, now: Fixtures.epoch).stored
        // The start (one effect, one event) and its effect's confirmation, as the driver carries it out.
        let (starts, started) = try await counter.counting {
            try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
                startDecision(id, stored, pools, now: Fixtures.epoch)
            }
        }
        #expect(starts == 7, "BEGIN, locks and lease, reads, the rollout, its effect, its event, COMMIT")
        let effect = try #require(started.effects.first)
        let (confirms, _) = try await counter.counting { try await store.confirmEffect(effect.id, now: Fixtures.epoch) }
        #expect(confirms == 2, "the effect's strategy, then the fenced update")
        #expect(try await store.effects(rollout: started.rollout.id).map(\.status) == [.confirmed])
        let id = started.rollout.id
        var last = RolloutRecord(rollout: started.rollout, generation: started.generation, observedAt: nil)
        let parsedBefore = counter.parsed.current
        for index in 1...4 {
            let time = Fixtures.epoch + .seconds(index * 10)
            let (reads, read) = try await counter.counting {
                try await store.rolloutRecord(id, effects: .failed, known: last)
            }
            let seen = try #require(read.record)
            let samples = [
                Sample(check: "error-rate", time: time, value: Double(index), verdict: .pass),
                Sample(check: "latency", time: time, value: 0.1, verdict: .pass),
            ]
            let tick = TickRecord(
                rolloutID: id, basedOn: seen, strategy: stored, samples: samples, observedAt: time, now: time)
            let (writes, recorded) = try await counter.counting {
                try await store.record(tick) { rollout, _ in
                    var next = rollout
                    next.updatedAt = time
                    return Decision(rollout: next)
                }
            }
            #expect(reads == 1, "the tick's read")
            #expect(writes == 1, "the tick's record")
            let decision = try #require(recorded)
            last = RolloutRecord(rollout: decision.rollout, generation: decision.generation, observedAt: time)
        }
        // The tick's read and record are prepared statements: their text was parsed once (on the connection the pool
        // gave, one here as the calls came one at a time), not on every tick.
        #expect(counter.parsed.current - parsedBefore == 2, "the read and the record parsed once each, in 4 ticks")
        // What those statements did.
        let after = try #require(try await store.rolloutRecord(id))
        #expect(after.generation == started.generation + 4)
        #expect(after.observedAt == Fixtures.epoch + .seconds(40))
        #expect(try await store.samples(rollout: id, check: "error-rate").map(\.value) == [2, 3, 4])
        await store.close()
    }
}

/// A log handler that counts postgres-nio's "Backend message received" of a BindComplete (logged at trace level):
/// one per statement sent; and of a ParseComplete: one per statement whose text the server parsed (a prepared
/// statement's only on its connection's first use).
struct StatementCounter: LogHandler {
    let count = Locked(0)
    let parsed = Locked(0)
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard event.message.description == "Backend message received", let values = event.metadata?.values else {
            return
        }
        if values.contains(where: { "\($0)" == ".bindComplete" }) { count.withLock { $0 += 1 } }
        if values.contains(where: { "\($0)" == ".parseComplete" }) { parsed.withLock { $0 += 1 } }
    }

    /// The statements sent while `body` ran, and its result.
    func counting<T>(_ body: () async throws -> T) async throws -> (Int, T) {
        let before = count.withLock { $0 }
        let result = try await body()
        return (count.withLock { $0 } - before, result)
    }
}
