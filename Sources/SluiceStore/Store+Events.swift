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

    public init(after: Int64 = 0, rollout: String? = nil, strategy: StrategyKey? = nil, limit: Int = 1000) {
        self.after = after
        self.rollout = rollout
        self.strategy = strategy
        self.limit = limit
    }

    /// Whether `event` passes the rollout and strategy filters (not `after`, not `limit`).
    public func matches(_ event: Event) -> Bool {
        (rollout == nil || event.rollout == rollout) && (strategy == nil || event.strategy == strategy)
    }
}

extension Store {
    /// Events in `seq` order, filtered by `query`.
    public func events(_ query: EventQuery = EventQuery()) async throws -> [Event] {
        try await read("list events") { db in
            var sql = "SELECT seq, content FROM events WHERE seq > ?"
            var arguments: StatementArguments = [query.after]
            if let rollout = query.rollout {
                sql += " AND rollout = ?"
                arguments += [rollout]
            }
            if let strategy = query.strategy {
                sql += " AND namespace = ? AND name = ?"
                arguments += [strategy.namespace, strategy.name]
            }
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

    /// The highest `seq` in the log (0 when it is empty).
    public func lastSeq() async throws -> Int64 {
        try await read("read the last event seq") { db in
            try Int64.fetchOne(try db.cachedStatement(sql: "SELECT MAX(seq) FROM events")) ?? 0
        }
    }

    /// The events matching `query` already in the log, then each new one as soon as its transaction
    /// commits, in `seq` order, with no gap and no duplicate. Ends when the consumer stops iterating
    /// (or with the store's failure to read, which ends the stream early).
    public func eventStream(_ query: EventQuery = EventQuery()) -> AsyncStream<Event> {
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
