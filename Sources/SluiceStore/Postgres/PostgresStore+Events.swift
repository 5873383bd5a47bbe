import PostgresNIO
import SluiceCore

extension PostgresStore {
    /// Events in `seq` order, filtered by `query`.
    public func events(_ query: EventQuery) async throws -> [Event] {
        try await single("list events") { connection in
            var select = Self.eventFilter("SELECT seq, content FROM events WHERE seq > ?", query)
            select.append(" ORDER BY seq LIMIT ?", query.limit)
            return try await connection.rows(select.query, logger: logger).map { row in
                let seq = try row.get("seq", Int64.self)
                var event = try StoreJSON.decode(Event.self, try row.get("content", String.self), what: "event \(seq)")
                event.seq = seq
                return event
            }
        }
    }

    /// Where a listing of `query` starts (the `after` to list from) when it should hold only the events from
    /// `since` on and, of those, only the newest `tail` (see `Store.eventStart`).
    public func eventStart(_ query: EventQuery, since: Timestamp?, tail: Int?) async throws -> Int64 {
        try await read("find where an event listing starts") { connection in
            var window = query
            if let since {
                var select = Self.eventFilter("SELECT seq FROM events WHERE seq > ?", query)
                select.append(" AND time < ? ORDER BY seq DESC LIMIT 1", since.millisecondsSinceEpoch)
                window.after = try await connection.row(select.query, logger: logger)?.get("seq", Int64.self)
                    ?? query.after
            }
            if let tail, tail > 0 {
                var select = Self.eventFilter("SELECT seq FROM events WHERE seq > ?", window)
                select.append(" ORDER BY seq DESC LIMIT 1 OFFSET ?", tail - 1)
                if let first = try await connection.row(select.query, logger: logger)?.get("seq", Int64.self) {
                    window.after = first - 1
                }
            }
            return window.after
        }
    }

    /// The highest `seq` in the log (0 when it is empty).
    public func lastSeq() async throws -> Int64 {
        try await single("read the last event seq") { connection in
            try await connection.row("SELECT last FROM event_seq", logger: logger)?.get("last", Int64.self) ?? 0
        }
    }

    /// The events matching `query` already in the log, then each new one once committed, in `seq` order, with no
    /// gap and no duplicate. Every page is read from the database (woken by every replica's commits, see
    /// `listen`), so the order is the database's commit order, whichever task or replica committed first. While the
    /// database cannot be read (a restart, a failover) it reads again from the same `seq` every
    /// `streamRetryDelay`, so a stream outlives an outage and misses nothing. Ends when the consumer stops iterating.
    public func eventStream(_ query: EventQuery) -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream<Event>.makeStream()
        let task = Task {
            defer { continuation.finish() }
            var page = query
            page.limit = 500
            while !Task.isCancelled {
                let events: [Event]
                do {
                    events = try await self.nextEvents(page)
                } catch {
                    if Task.isCancelled { return }
                    try? await Task.sleep(for: Self.streamRetryDelay)  // the database is down: read again soon
                    continue
                }
                for event in events { continuation.yield(event) }
                page.after = events.last?.seq ?? page.after
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// How long a live stream waits before reading again after the database failed to answer.
    static let streamRetryDelay: Duration = .milliseconds(500)

    /// The first page of events matching `query`, waiting for a commit of any replica while there is none (see
    /// `Store.nextEvents`). Throws `CancellationError` when the task is cancelled while waiting.
    public func nextEvents(_ query: EventQuery) async throws -> [Event] {
        try await broadcaster.nextEvents(query) { try await eventsLeftBehindAtTheBound($0) }
    }

    /// `events(query)`, failing at `configuration.callTimeout` even when the call itself does not end: a read in
    /// flight when PostgreSQL stopped was seen waiting inside the connection pool for good (past 120 s, while new
    /// calls were answered), and `transaction`'s bound waits for the call it cancels. The call is cancelled and left
    /// to end on its own, so a live stream reads again on a fresh call instead of hanging with it.
    func eventsLeftBehindAtTheBound(_ query: EventQuery) async throws -> [Event] {
        let call = Task { try await self.events(query) }
        let timeout = configuration.callTimeout
        let waiter = Locked<CheckedContinuation<[Event], any Error>?>(nil)
        let resume: @Sendable (Result<[Event], any Error>) -> Void = { result in
            waiter.withLock { pending -> CheckedContinuation<[Event], any Error>? in
                defer { pending = nil }
                return pending
            }?.resume(with: result)
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                waiter.withLock { $0 = continuation }
                Task { resume(await call.result) }
                Task {
                    try? await Task.sleep(for: timeout)  // the bound of the read
                    call.cancel()
                    resume(.failure(StoreError(.database, "cannot list events: PostgreSQL did not answer within \(timeout)")))
                }
            }
        } onCancel: {
            call.cancel()
            resume(.failure(CancellationError()))
        }
    }

    /// The `seq` of the last event `sink` is done with (delivered or given up), nil when it has none yet.
    public func deliveryCursor(sink: String) async throws -> Int64? {
        try await single("read the delivery cursor") { connection in
            try await connection.row("SELECT seq FROM delivery_cursors WHERE sink = \(sink)", logger: logger)?
                .get("seq", Int64.self)
        }
    }

    /// Records that `sink` is done with every event up to `seq`. A cursor never moves back.
    public func advanceDeliveryCursor(sink: String, to seq: Int64) async throws {
        try await write("advance the delivery cursor") { connection in
            try await connection.run(
                """
                INSERT INTO delivery_cursors (sink, seq) VALUES (\(sink), \(seq))
                ON CONFLICT (sink) DO UPDATE SET seq = GREATEST(delivery_cursors.seq, excluded.seq)
                """, logger: logger)
        }
    }

    /// Every sink that has a cursor, with it.
    public func deliveryCursors() async throws -> [String: Int64] {
        try await single("list the delivery cursors") { connection in
            var cursors: [String: Int64] = [:]
            for row in try await connection.rows("SELECT sink, seq FROM delivery_cursors", logger: logger) {
                cursors[try row.get("sink", String.self)] = try row.get("seq", Int64.self)
            }
            return cursors
        }
    }

    /// `select` (ending in `seq > ?`, bound to `query.after`) with the rollout, strategy and trace filters of `query`.
    private static func eventFilter(_ select: String, _ query: EventQuery) -> SQLBuilder {
        var sql = SQLBuilder("")
        sql.append(select, query.after)
        if let rollout = query.rollout {
            sql.append(" AND rollout = ?", rollout)
        }
        if let strategy = query.strategy {
            sql.append(" AND namespace = ? AND name = ?", strategy.namespace, strategy.name)
        }
        if let traceID = query.traceID {
            sql.append(" AND substr(content::json ->> 'traceparent', 4, 32) = ?", traceID)
        }
        return sql
    }
}
