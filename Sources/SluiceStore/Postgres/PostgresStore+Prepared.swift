import Logging
import PostgresNIO

// The statements every tick sends, prepared once per connection (postgres-nio's `PostgresPreparedStatement`: Parse
// on a connection's first use, then Bind and Execute only). PostgreSQL then neither parses nor analyses them again,
// and after five executions plans them once (a generic plan: every lookup is by key), where the same text sent as
// an unnamed statement was parsed, analysed and planned on every tick: 55 % of PostgreSQL's CPU at 3,000 rollouts
// over 3 replicas (BENCHMARKS.md, "Prepared tick statements"). Their results and refusals are the statements'
// that `PostgresStore+Rollouts.swift` sent as text before; the parameters' types are given, so a NULL needs none.

/// The tick's read: the rollout joined with its effects in one status, a row per effect (one row when it has none),
/// its content NULL when its generation is the one given.
struct TickReadStatement: PostgresPreparedStatement {
    static let name = "sluice_tick_read_v1"
    static let sql = """
        SELECT r.generation, r.observed_at,
            CASE WHEN r.generation = $2 THEN NULL ELSE r.content END AS content,
            e.id AS effect_id, e.rollout AS effect_rollout, e.status AS effect_status,
            e.content AS effect_content, e.message AS effect_message, e.created_at AS effect_created_at,
            e.settled_at AS effect_settled_at
        FROM rollouts AS r LEFT JOIN effects AS e ON e.rollout = r.id AND e.status = $3
        WHERE r.id = $1
        ORDER BY e.id
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .int8, .text]
    typealias Row = PostgresRandomAccessRow

    var id: String
    var knownGeneration: Int64?
    var status: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(id)
        bindings.append(knownGeneration)
        bindings.append(status)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { row.makeRandomAccess() }
}

/// The lease parameters of a fenced statement: with no lease (an unfenced store) nothing matches and `unfenced`
/// lets the write through.
struct FenceParameters: Sendable {
    var shard: Int64
    var holder: String
    var epoch: Int64
    var unfenced: Bool

    init(_ lease: HeldLease?) {
        shard = Int64(lease?.shard ?? -1)
        holder = lease?.replica ?? ""
        epoch = lease?.epoch ?? -1
        unfenced = lease == nil
    }

    /// Appends the four, in the order the fenced statements number them ($1 to $4).
    func append(to bindings: inout PostgresBindings) {
        bindings.append(shard)
        bindings.append(holder)
        bindings.append(epoch)
        bindings.append(unfenced)
    }
}

/// A tick's record: takes the lease row `FOR SHARE`, writes the rollout over the generation read, adds the samples
/// (one per check) and trims their rings, all only when the lease is held and the generation unchanged
/// (`PostgresStore.writeTicks` of one tick; several go in `TickBatchStatement`, whose plan costs PostgreSQL half as
/// much again for a single row: BENCHMARKS.md, "Group commit of ticks").
struct TickWriteStatement: PostgresPreparedStatement {
    static let name = "sluice_tick_write_v1"
    static let sql = """
        WITH fence AS (
            SELECT epoch FROM shard_leases
            WHERE shard = $1 AND holder = $2 AND epoch = $3
            FOR SHARE
        ),
        updated AS (
            UPDATE rollouts SET phase = $5, active = $6, generation = generation + 1, updated_at = $7,
                content = $8, observed_at = COALESCE($9, observed_at)
            WHERE id = $10 AND generation = $11 AND ($4 OR EXISTS (SELECT 1 FROM fence))
            RETURNING generation
        ),
        added AS (
            INSERT INTO samples (rollout, check_name, time, content)
            SELECT $10, s.check_name, s.time, s.content
            FROM updated, UNNEST($12::TEXT[], $13::BIGINT[], $14::TEXT[])
                WITH ORDINALITY AS s(check_name, time, content, position)
            ORDER BY s.position
        ),
        trimmed AS (
            DELETE FROM samples AS d USING updated, UNNEST($12::TEXT[]) AS c(check_name)
            WHERE d.rollout = $10 AND d.check_name = c.check_name AND d.id <= (
                SELECT id FROM samples WHERE rollout = $10 AND check_name = c.check_name
                ORDER BY id DESC LIMIT 1 OFFSET $15)
        )
        SELECT (SELECT generation FROM updated) AS generation,
            $4 OR EXISTS (SELECT 1 FROM fence) AS held,
            EXISTS (SELECT 1 FROM rollouts WHERE id = $10) AS found
        """
    static let bindingDataTypes: [PostgresDataType] = [
        .int8, .text, .int8, .bool, .text, .bool, .int8, .text, .int8, .text, .int8, .textArray, .int8Array,
        .textArray, .int8,
    ]
    typealias Row = PostgresRandomAccessRow

    var write: TickWrite
    /// How many of a ring's old samples stay beside the new one.
    var keep: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 15)
        write.fence.append(to: &bindings)
        bindings.append(write.phase)
        bindings.append(write.active)
        bindings.append(write.updatedAt)
        bindings.append(write.content)
        bindings.append(write.observedAt)
        bindings.append(write.id)
        bindings.append(write.readGeneration)
        bindings.append(write.checks)
        bindings.append(write.times)
        bindings.append(write.contents)
        bindings.append(keep)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { row.makeRandomAccess() }
}

/// What a tick that writes nothing checks: the rollout's generation, and whether the lease is still held.
struct TickCheckStatement: PostgresPreparedStatement {
    static let name = "sluice_tick_check_v1"
    static let sql = """
        SELECT generation, $4 OR EXISTS (
            SELECT 1 FROM shard_leases WHERE shard = $1 AND holder = $2 AND epoch = $3
        ) AS held
        FROM rollouts WHERE id = $5
        """
    static let bindingDataTypes: [PostgresDataType] = [.int8, .text, .int8, .bool, .text]
    typealias Row = PostgresRandomAccessRow

    var fence: FenceParameters
    var id: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 5)
        fence.append(to: &bindings)
        bindings.append(id)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { row.makeRandomAccess() }
}

extension PostgresConnection {
    /// Runs a prepared `statement` and returns every row it gave.
    func rows<Statement: PostgresPreparedStatement>(_ statement: Statement, logger: Logger) async throws
        -> [PostgresRandomAccessRow] where Statement.Row == PostgresRandomAccessRow
    {
        var rows: [PostgresRandomAccessRow] = []
        for try await row in try await execute(statement, logger: logger) { rows.append(row) }
        return rows
    }
}
