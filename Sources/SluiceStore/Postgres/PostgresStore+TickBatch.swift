import Logging
import PostgresNIO
import SluiceCore

// Group commit of the ticks of many rollouts. A replica records a tick of each of its rollouts every interval, nearly
// all of them one statement that writes the rollout and its samples (`PostgresStore.recordTick`). Each statement is a
// trip through the connection pool, NIO and postgres-nio on the replica, and on PostgreSQL a Bind, an executor start
// and a commit of its own. The ticks that reach the store within a short window, or while the batch before is in
// flight, go out together as one statement of arrays: each row fenced by its own lease and generation, as the
// one-tick statement fences it, and answered on its own. The busier the replica, the larger the batches
// (BENCHMARKS.md, "Group commit of ticks"). A tick's record is 10 ms later for it; a tick is due every interval
// (10 s by default), and a decision that starts a rollback or runs effects is not batched.

/// One tick's write: a row of `TickBatchStatement`.
struct TickWrite: Sendable {
    var fence: FenceParameters
    var phase: String
    var active: Bool
    var updatedAt: Int64
    var content: String
    var observedAt: Int64?
    var id: String
    var readGeneration: Int64
    /// The new samples, one per check.
    var checks: [String]
    var times: [Int64]
    var contents: [String]
}

/// What the database made of one tick's write, in the order `PostgresStore.writeTick` checks it.
enum TickWriteOutcome: Sendable, Equatable {
    /// Written: the rollout's new generation.
    case written(Int64)
    case notFound
    /// The lease was not held at the fence's epoch: nothing written.
    case fenced
    /// The rollout's generation moved since it was read: nothing written.
    case stale
}

/// The ticks of many rollouts in one statement: the batch's rows are unnested in order (`n`); each is fenced by its
/// own lease row (taken `FOR SHARE`, as the one-tick statement takes it, so a replica taking a shard waits for the
/// batch) and its own generation; a rollout's samples are added, and their rings trimmed, only when its row was
/// written. One row comes back per tick, in the batch's order.
struct TickBatchStatement: PostgresPreparedStatement {
    static let name = "sluice_tick_batch_v1"
    static let sql = """
        WITH input AS (
            SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::BOOLEAN[], $5::TEXT[], $6::BOOLEAN[],
                $7::BIGINT[], $8::TEXT[], $9::BIGINT[], $10::BOOLEAN[], $11::TEXT[], $12::BIGINT[])
                WITH ORDINALITY AS i(shard, holder, epoch, unfenced, phase, active, updated_at, content, observed_at,
                    observed, id, read_generation, n)
        ),
        fence AS (
            SELECT l.shard, l.holder, l.epoch FROM shard_leases AS l
            WHERE (l.shard, l.holder, l.epoch) IN (SELECT shard, holder, epoch FROM input)
            FOR SHARE
        ),
        checked AS (
            SELECT i.*, i.unfenced OR EXISTS (
                SELECT 1 FROM fence AS f WHERE f.shard = i.shard AND f.holder = i.holder AND f.epoch = i.epoch
            ) AS held
            FROM input AS i
        ),
        updated AS (
            UPDATE rollouts AS r SET phase = c.phase, active = c.active, generation = r.generation + 1,
                updated_at = c.updated_at, content = c.content,
                observed_at = CASE WHEN c.observed THEN c.observed_at ELSE r.observed_at END
            FROM checked AS c
            WHERE r.id = c.id AND r.generation = c.read_generation AND c.held
            RETURNING r.id, r.generation
        ),
        new_samples AS (
            SELECT * FROM UNNEST($13::TEXT[], $14::TEXT[], $15::BIGINT[], $16::TEXT[])
                WITH ORDINALITY AS s(rollout, check_name, time, content, position)
        ),
        added AS (
            INSERT INTO samples (rollout, check_name, time, content)
            SELECT s.rollout, s.check_name, s.time, s.content
            FROM new_samples AS s JOIN updated AS u ON u.id = s.rollout
            ORDER BY s.position
        ),
        trimmed AS (
            DELETE FROM samples AS d USING new_samples AS s, updated AS u
            WHERE u.id = s.rollout AND d.rollout = s.rollout AND d.check_name = s.check_name AND d.id <= (
                SELECT id FROM samples WHERE rollout = s.rollout AND check_name = s.check_name
                ORDER BY id DESC LIMIT 1 OFFSET $17)
        )
        SELECT c.n, u.generation, c.held, EXISTS (SELECT 1 FROM rollouts WHERE id = c.id) AS found
        FROM checked AS c LEFT JOIN updated AS u ON u.id = c.id
        ORDER BY c.n
        """
    static let bindingDataTypes: [PostgresDataType] = [
        .int8Array, .textArray, .int8Array, .boolArray, .textArray, .boolArray, .int8Array, .textArray, .int8Array,
        .boolArray, .textArray, .int8Array, .textArray, .textArray, .int8Array, .textArray, .int8,
    ]
    typealias Row = PostgresRandomAccessRow

    var writes: [TickWrite]
    /// How many of a ring's old samples stay beside the new one.
    var keep: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 17)
        bindings.append(writes.map(\.fence.shard))
        bindings.append(writes.map(\.fence.holder))
        bindings.append(writes.map(\.fence.epoch))
        bindings.append(writes.map(\.fence.unfenced))
        bindings.append(writes.map(\.phase))
        bindings.append(writes.map(\.active))
        bindings.append(writes.map(\.updatedAt))
        bindings.append(writes.map(\.content))
        bindings.append(writes.map { $0.observedAt ?? 0 })
        bindings.append(writes.map { $0.observedAt != nil })
        bindings.append(writes.map(\.id))
        bindings.append(writes.map(\.readGeneration))
        bindings.append(writes.flatMap { write in write.checks.map { _ in write.id } })
        bindings.append(writes.flatMap(\.checks))
        bindings.append(writes.flatMap(\.times))
        bindings.append(writes.flatMap(\.contents))
        bindings.append(keep)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { row.makeRandomAccess() }
}

/// Sends the ticks given to `write` in batches: at most `maxInFlight` statements at a time, each carrying every tick
/// that waited for a place (at most `maxBatch`, and one per rollout). A tick that comes while fewer are in flight
/// starts a batch, which waits `gather` for others to join it.
final class TickBatcher: Sendable {
    /// A tick waiting for its batch.
    private struct Waiting {
        var write: TickWrite
        var answer: CheckedContinuation<TickWriteOutcome, any Error>
    }

    private struct State {
        var waiting: [Waiting] = []
        var inFlight = 0
    }

    private let state = Locked(State())
    let maxInFlight: Int
    let maxBatch: Int
    /// How long the first tick to come while no batch is in flight waits for others to join it.
    let gather: Duration

    /// How many ticks wait for a batch now.
    var waiting: Int { state.withLock { $0.waiting.count } }

    init(maxInFlight: Int, maxBatch: Int, gather: Duration = .zero) {
        precondition(maxInFlight > 0 && maxBatch > 0, "a batcher sends at least one tick at a time")
        self.maxInFlight = maxInFlight
        self.maxBatch = maxBatch
        self.gather = gather
    }

    /// Writes `write` with the batch it joins, which `send` sends (one outcome per write, in order; a throw fails
    /// every write of the batch; every caller passes the same); what the database made of it. Not cancellable once
    /// queued: the batch may commit it, and its answer is the caller's to have.
    func write(
        _ write: TickWrite, send: @escaping @Sendable ([TickWrite]) async throws -> [TickWriteOutcome]
    ) async throws -> TickWriteOutcome {
        try await withCheckedThrowingContinuation { answer in
            let starts = state.withLock { state in
                state.waiting.append(Waiting(write: write, answer: answer))
                guard state.inFlight < maxInFlight else { return false }
                state.inFlight += 1
                return true
            }
            guard starts else { return }
            Task {
                if self.gather > .zero { try? await Task.sleep(for: self.gather) }
                await self.sendWaiting(send)
            }
        }
    }

    /// Sends batches of what waits until nothing does.
    private func sendWaiting(_ send: @Sendable ([TickWrite]) async throws -> [TickWriteOutcome]) async {
        while let batch = nextBatch() {
            do {
                let outcomes = try await send(batch.map(\.write))
                guard outcomes.count == batch.count else {
                    throw StoreError(.database, "a batch of \(batch.count) ticks was answered with \(outcomes.count) rows")
                }
                for (waiting, outcome) in zip(batch, outcomes) { waiting.answer.resume(returning: outcome) }
            } catch {
                for waiting in batch { waiting.answer.resume(throwing: error) }
            }
        }
    }

    /// The next batch, oldest first: at most `maxBatch`, one tick per rollout (a second tick of one waits for the
    /// next batch, so rows never race each other in one statement); nil, giving the place back, when none waits.
    private func nextBatch() -> [Waiting]? {
        state.withLock { state in
            guard !state.waiting.isEmpty else {
                state.inFlight -= 1
                return nil
            }
            var batch: [Waiting] = []
            var left: [Waiting] = []
            var ids = Set<String>()
            for waiting in state.waiting {
                if batch.count < maxBatch, ids.insert(waiting.write.id).inserted {
                    batch.append(waiting)
                } else {
                    left.append(waiting)
                }
            }
            state.waiting = left
            return batch
        }
    }
}

extension PostgresStore {
    /// Sends `writes` as one batch, on a connection of its own (no transaction: the statement is atomic).
    func sendTicks(_ writes: [TickWrite]) async throws -> [TickWriteOutcome] {
        let count = writes.count
        return try await single("record \(count) \(count == 1 ? "tick" : "ticks")") { connection in
            try await self.writeTicks(connection, writes)
        }
    }

    /// Writes `writes` in one statement on `connection`: an outcome per write, in order. One alone goes in the
    /// one-tick statement, which costs PostgreSQL less than a batch of one.
    func writeTicks(_ connection: PostgresConnection, _ writes: [TickWrite]) async throws -> [TickWriteOutcome] {
        let keep = Int64(samplesPerCheck - 1)
        let rows =
            if writes.count == 1 {
                try await connection.rows(TickWriteStatement(write: writes[0], keep: keep), logger: logger)
            } else {
                try await connection.rows(TickBatchStatement(writes: writes, keep: keep), logger: logger)
            }
        return try rows.map { row in
            guard try row.get("found", Bool.self) else { return .notFound }
            guard try row.get("held", Bool.self) else { return .fenced }
            guard let generation = try row.get("generation", Int64?.self) else { return .stale }
            return .written(generation)
        }
    }
}
