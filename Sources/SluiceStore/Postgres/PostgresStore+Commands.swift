import Foundation
import PostgresNIO
import SluiceCore

extension PostgresStore: CommandQueue {
    /// The channel the queue notifies: `command:ID:NAMESPACE/NAME:BODY` (or `queued:SHARD` for a body too long for a
    /// notice) when a command is queued, `finished:ID` when one is carried out, refused or cancelled. Delivered at
    /// commit, to every replica's listener (`listen`).
    static let commandsChannel = "sluice_commands"

    /// Queues `request` and notifies `commandsChannel` in the same statement (no extra round trip). Not fenced: any
    /// replica may queue a command, as any may receive an API request; carrying it out is fenced.
    public func enqueue(
        _ request: QueuedCommand.Request, strategy key: StrategyKey, requestID: String?, traceparent: String?,
        now: Timestamp
    ) async throws -> Int64 {
        let shard = Shards.of(key)
        let body = try StoreJSON.encode(QueuedBody(request: request, requestID: requestID, traceparent: traceparent))
        // The whole command in the notice (`command:ID:NAMESPACE/NAME:BODY`) saves the owner a read; PostgreSQL takes
        // payloads under 8000 bytes, so a longer one only names its shard.
        let notice = "command:\(key.namespace)/\(key.name):\(body)"
        let (prefix, rest) = notice.utf8.count < 7900 ? ("command:", ":" + notice.dropFirst("command:".count)) : ("queued:\(shard)", "")
        return try await write("queue a command for \(key)") { connection in
            guard
                let row = try await connection.row(
                    """
                    WITH queued AS (
                        INSERT INTO commands (shard, namespace, name, request, status, queued_at)
                        VALUES (\(Int32(shard)), \(key.namespace), \(key.name), \(body), 'pending',
                            \(now.millisecondsSinceEpoch))
                        RETURNING id
                    )
                    SELECT id, pg_notify(\(Self.commandsChannel),
                        CASE WHEN \(rest) = '' THEN \(prefix) ELSE \(prefix) || id::text || \(rest) END)
                    FROM queued
                    """, logger: logger)
            else { throw StoreError(.database, "a command for \(key) was queued without an id") }
            return try row.get("id", Int64.self)
        }
    }

    public func pendingCommands(inShards shards: Set<Int>) async throws -> [QueuedCommand] {
        guard !shards.isEmpty else { return [] }
        return try await single("read the queued commands") { connection in
            try await connection.rows(
                """
                SELECT id, namespace, name, request FROM commands
                WHERE status = 'pending' AND shard = ANY(\(shards.sorted().map(Int32.init))::INTEGER[])
                ORDER BY id
                """, logger: logger
            ).map { row in
                let id = try row.get("id", Int64.self)
                let body = try StoreJSON.decode(QueuedBody.self, try row.get("request", String.self), what: "command \(id)")
                return QueuedCommand(
                    id: id,
                    strategy: StrategyKey(
                        namespace: try row.get("namespace", String.self), name: try row.get("name", String.self)),
                    request: body.request, requestID: body.requestID, traceparent: body.traceparent)
            }
        }
    }

    public func outcome(ofCommand id: Int64) async throws -> CommandOutcome? {
        try await single("read what became of command \(id)") { connection in
            guard let row = try await connection.row("SELECT status, outcome FROM commands WHERE id = \(id)", logger: logger)
            else { return nil }
            return try Self.outcome(row, id: id)
        }
    }

    public func cancelCommand(_ id: Int64, now: Timestamp) async throws -> CommandOutcome {
        try await write("cancel command \(id)") { connection in
            // Waits for an owner's transaction that holds the row (it is taking it), then sees what it made of it.
            let cancelled = try await connection.row(
                """
                WITH cancelled AS (
                    UPDATE commands SET status = 'cancelled', finished_at = \(now.millisecondsSinceEpoch)
                    WHERE id = \(id) AND status = 'pending' RETURNING id
                )
                SELECT id FROM cancelled, (SELECT pg_notify(\(Self.commandsChannel), \("finished:\(id)"))) AS notified
                """, logger: logger)
            if cancelled != nil { return .cancelled }
            guard
                let row = try await connection.row("SELECT status, outcome FROM commands WHERE id = \(id)", logger: logger),
                let outcome = try Self.outcome(row, id: id)
            else { throw StoreError(.notFound, "command \(id) does not exist") }
            return outcome
        }
    }

    public func refuseCommand(_ command: QueuedCommand, code: String, message: String, now: Timestamp) async throws {
        try await write("refuse command \(command.id)") { connection in
            try await self.fence(connection, command.strategy, what: "refuse command \(command.id)")
            try await self.finishCommand(connection, command.id, .refused(code: code, message: message), now: now)
        }
    }

    public func startRollout(
        strategy key: StrategyKey, now: Timestamp, carrying id: Int64,
        _ build: @escaping @Sendable (_ id: String, _ strategy: StoredStrategy, _ pools: Pools?) throws -> Decision
    ) async throws -> RecordedDecision {
        try await startRollout(strategy: key, now: now, queued: id, build)
    }

    public func record(
        _ tick: TickRecord, carrying id: Int64,
        _ decide: @escaping @Sendable (Rollout, StoredStrategy) throws -> Decision?
    ) async throws -> RecordedDecision? {
        try await record(tick, queued: id, decide)
    }

    public func commandNotices() -> AsyncStream<CommandNotice> {
        notices.subscribe()
    }

    // MARK: - Inside a transaction

    /// Locks queued command `id` for this transaction, refusing with `staleState` unless it is still queued: taken by
    /// another transaction first (which committed), or cancelled.
    func takeCommand(_ connection: PostgresConnection, _ id: Int64) async throws {
        let status = try await connection.row(
            "SELECT status FROM commands WHERE id = \(id) FOR UPDATE", logger: logger
        )?.get("status", String.self)
        guard status == "pending" else {
            throw StoreError(.staleState, "command \(id) is no longer queued (\(status ?? "no such command"))")
        }
    }

    /// Marks queued command `id` finished with `outcome` (when still queued) and notifies `commandsChannel`.
    func finishCommand(_ connection: PostgresConnection, _ id: Int64, _ outcome: CommandOutcome, now: Timestamp)
        async throws
    {
        let status: String
        switch outcome {
        case .applied: status = "applied"
        case .refused: status = "refused"
        case .cancelled: status = "cancelled"
        }
        try await connection.run(
            """
            WITH finished AS (
                UPDATE commands SET status = \(status), outcome = \(try StoreJSON.encode(outcome)),
                    finished_at = \(now.millisecondsSinceEpoch), finished_by = \(leases?.replica)
                WHERE id = \(id) AND status = 'pending' RETURNING id
            )
            SELECT id FROM finished, (SELECT pg_notify(\(Self.commandsChannel), \("finished:\(id)"))) AS notified
            """, logger: logger)
    }

    static func outcome(_ row: PostgresRandomAccessRow, id: Int64) throws -> CommandOutcome? {
        switch try row.get("status", String.self) {
        case "pending": return nil
        case "cancelled": return .cancelled
        default:
            guard let text = try row.get("outcome", String?.self) else {
                throw StoreError(.corruptData, "command \(id) is finished without an outcome")
            }
            return try StoreJSON.decode(CommandOutcome.self, text, what: "the outcome of command \(id)")
        }
    }
}

/// A queued command's `request` column: what was asked and the API request it came from.
struct QueuedBody: Codable {
    var request: QueuedCommand.Request
    var requestID: String?
    var traceparent: String?
}

extension CommandNotice {
    /// The notice a `commandsChannel` payload says; nil for one this version does not know.
    init?(notified payload: String) {
        if payload.hasPrefix("command:") {
            // command:ID:NAMESPACE/NAME:BODY (namespaces and names hold no colon; the body is JSON)
            let parts = payload.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count == 4, let id = Int64(parts[1]), let key = StrategyKey(notified: String(parts[2])),
                let body = try? StoreJSON.decode(QueuedBody.self, String(parts[3]), what: "command \(id)")
            else { return nil }
            self = .command(
                QueuedCommand(
                    id: id, strategy: key, request: body.request, requestID: body.requestID,
                    traceparent: body.traceparent))
        } else if payload.hasPrefix("queued:"), let shard = Int(payload.dropFirst("queued:".count)) {
            self = .queued(shard: shard)
        } else if payload.hasPrefix("finished:"), let id = Int64(payload.dropFirst("finished:".count)) {
            self = .finished(id: id)
        } else {
            return nil
        }
    }
}

/// Fans the queue's notices out to this replica's subscribers, each with its own buffer.
final class CommandNotices: Sendable {
    private let subscribers = Locked<[UInt64: AsyncStream<CommandNotice>.Continuation]>([:])
    private let next = Locked<UInt64>(0)

    func subscribe() -> AsyncStream<CommandNotice> {
        let (stream, continuation) = AsyncStream<CommandNotice>.makeStream()
        let id = next.withLock {
            $0 += 1
            return $0
        }
        subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ notice: CommandNotice) {
        for continuation in subscribers.withLock({ Array($0.values) }) { continuation.yield(notice) }
    }
}
