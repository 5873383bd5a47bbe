import GRDB
import SluiceCore

/// Which events to list or follow.
public struct EventQuery: Sendable, Hashable {
    /// Only events with a greater `seq` (0: from the start).
    public var after: Int64
    public var rollout: String?
    public var strategy: StrategyKey?
    /// At most this many events per call (a page; call again with `after` = the last seq).
    public var limit: Int
    /// Only events recorded in this trace: 32 lowercase hex digits, the second field of their `traceparent`.
    public var traceID: String?

    public init(
        after: Int64 = 0, rollout: String? = nil, strategy: StrategyKey? = nil, limit: Int = 1000,
        traceID: String? = nil
    ) {
        self.after = after
        self.rollout = rollout
        self.strategy = strategy
        self.limit = limit
        self.traceID = traceID
    }

    /// Whether `event` passes the rollout, strategy and trace filters (not `after`, not `limit`).
    public func matches(_ event: Event) -> Bool {
        (rollout == nil || event.rollout == rollout) && (strategy == nil || event.strategy == strategy)
            && (traceID == nil || event.traceID == traceID)
    }
}

extension Store {
    /// Events in `seq` order, filtered by `query`.
    public func events(_ query: EventQuery) async throws -> [Event] {
        try await read("list events") { db in
            var (sql, arguments) = Self.eventFilter("SELECT seq, content FROM events WHERE seq > ?", query)
            sql += " ORDER BY seq LIMIT ?"
            arguments += [query.limit]
            return try Row.fetchAll(try db.cachedStatement(sql: sql), arguments: arguments).map { row in
                let seq: Int64 = row["seq"]
                var event = try StoreJSON.decode(Event.self, row["content"], what: "event \(seq)")
                event.seq = seq
                return event
            }
        }
    }

    /// Where a listing of `query` starts (the `after` to list from) when it should hold only the events from
    /// `since` on and, of those, only the newest `tail`. Both read backwards from the newest event, so the cost
    /// is the size of the window, not of the log. The log is in time order (one writer stamps and appends).
    public func eventStart(_ query: EventQuery, since: Timestamp?, tail: Int?) async throws -> Int64 {
        try await read("find where an event listing starts") { db in
            var window = query
            if let since {
                // The newest event before `since` (the first one found reading backwards) is where it starts.
                var (sql, arguments) = Self.eventFilter("SELECT seq FROM events WHERE seq > ?", query)
                sql += " AND time < ? ORDER BY seq DESC LIMIT 1"
                arguments += [since.millisecondsSinceEpoch]
                window.after = try Int64.fetchOne(try db.cachedStatement(sql: sql), arguments: arguments) ?? query.after
            }
            if let tail, tail > 0 {
                var (sql, arguments) = Self.eventFilter("SELECT seq FROM events WHERE seq > ?", window)
                sql += " ORDER BY seq DESC LIMIT 1 OFFSET ?"
                arguments += [tail - 1]
                if let first = try Int64.fetchOne(try db.cachedStatement(sql: sql), arguments: arguments) {
                    window.after = first - 1
                }
            }
            return window.after
        }
    }

    /// `select` (ending in `seq > ?`, bound to `query.after`) with the rollout and strategy filters of `query`.
    private static func eventFilter(_ select: String, _ query: EventQuery) -> (String, StatementArguments) {
        var sql = select
        var arguments: StatementArguments = [query.after]
        if let rollout = query.rollout {
            sql += " AND rollout = ?"
            arguments += [rollout]
        }
        if let strategy = query.strategy {
            sql += " AND namespace = ? AND name = ?"
            arguments += [strategy.namespace, strategy.name]
        }
        if let traceID = query.traceID {
            // A scan of the rows after `after` (no index: a trace's events are looked up, not followed at volume).
            sql += " AND substr(json_extract(content, '$.traceparent'), 4, 32) = ?"
            arguments += [traceID]
        }
        return (sql, arguments)
    }

    /// The highest `seq` in the log (0 when it is empty).
    public func lastSeq() async throws -> Int64 {
        try await read("read the last event seq") { db in
            try Int64.fetchOne(try db.cachedStatement(sql: "SELECT MAX(seq) FROM events")) ?? 0
        }
    }

    /// The events matching `query` already in the log, then each new one as soon as its transaction
    /// commits, in `seq` order, with no gap and no duplicate. Ends when the consumer stops iterating
    /// (or with the store's failure to read, which ends the stream early).
    public func eventStream(_ query: EventQuery) -> AsyncStream<Event> {
        let (live, subscription) = broadcaster.subscribe()
        let (stream, continuation) = AsyncStream<Event>.makeStream()
        let task = Task {
            defer {
                broadcaster.unsubscribe(subscription)
                continuation.finish()
            }
            var last = query.after
            var page = query
            page.limit = 500
            // The backlog first, page by page, until it is exhausted.
            while !Task.isCancelled {
                page.after = last
                guard let events = try? await self.events(page) else { return }
                for event in events {
                    continuation.yield(event)
                    last = event.seq
                }
                if events.count < page.limit { break }
            }
            // Everything committed after subscribing arrives here; what the backlog already held is skipped.
            for await event in live where event.seq > last {
                guard query.matches(event) else { continue }
                continuation.yield(event)
                last = event.seq
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
