import GRDB
import SluiceCore

/// The names of the sinks that follow the event log with a delivery cursor (docs/runtime.md "Deliveries").
public enum DeliverySink {
    /// The Kubernetes Event mirror of `sluice serve`.
    public static let kubernetesEvents = "kubernetes-events"

    /// One webhook of one strategy. The name holds the URL, which may carry a secret: it stays in the store
    /// and is never logged.
    public static func webhook(_ strategy: StrategyKey, url: String) -> String {
        "webhook \(strategy.namespace)/\(strategy.name) \(url)"
    }
}

extension Store {
    /// The `seq` of the last event `sink` is done with (delivered or given up), nil when it has none yet.
    public func deliveryCursor(sink: String) async throws -> Int64? {
        try await read("read the delivery cursor") { db in
            try Int64.fetchOne(
                try db.cachedStatement(sql: "SELECT seq FROM delivery_cursors WHERE sink = ?"), arguments: [sink])
        }
    }

    /// Records that `sink` is done with every event up to `seq`. A cursor never moves back, so a late or
    /// repeated call changes nothing.
    public func advanceDeliveryCursor(sink: String, to seq: Int64) async throws {
        try await write("advance the delivery cursor") { db in
            try db.cachedStatement(
                sql: """
                    INSERT INTO delivery_cursors (sink, seq) VALUES (?, ?)
                    ON CONFLICT (sink) DO UPDATE SET seq = MAX(seq, excluded.seq)
                    """
            ).execute(arguments: [sink, seq])
        }
    }

    /// Every sink that has a cursor, with it.
    public func deliveryCursors() async throws -> [String: Int64] {
        try await read("list the delivery cursors") { db in
            var cursors: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT sink, seq FROM delivery_cursors") {
                cursors[row["sink"]] = row["seq"]
            }
            return cursors
        }
    }

    /// The first page of events matching `query`, waiting for a commit while there is none: how a sink
    /// follows the log at its own pace, holding one page at most however far behind it is. A query of one
    /// strategy wakes only for that strategy's commits (only a rollout filter reads again for nothing). Throws
    /// `CancellationError` when the task is cancelled while waiting.
    public func nextEvents(_ query: EventQuery) async throws -> [Event] {
        try await broadcaster.nextEvents(query) { try await events($0) }
    }

    /// The schema of delivery cursors. A store older than them delivered at most once and kept no record:
    /// the webhooks its strategies name start after what the log holds, so upgrading re-sends no history.
    static func migrateDeliveryCursors(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE delivery_cursors (
                    sink TEXT PRIMARY KEY NOT NULL,
                    seq INTEGER NOT NULL
                );
                INSERT OR IGNORE INTO delivery_cursors (sink, seq)
                    SELECT DISTINCT
                        'webhook ' || r.namespace || '/' || r.name || ' ' || json_extract(n.value, '$.webhook'),
                        (SELECT IFNULL(MAX(seq), 0) FROM events)
                    FROM strategy_revisions r, json_each(r.content, '$.notifications') n
                    WHERE json_extract(n.value, '$.webhook') IS NOT NULL;
                """
        )
    }
}
