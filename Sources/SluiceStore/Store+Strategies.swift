import GRDB
import SluiceCore

/// One revision of a strategy as applied.
public struct StoredStrategy: Sendable, Hashable {
    public var strategy: Strategy
    /// 1 for the first apply; bumped by every apply that changes the strategy's content.
    public var revision: Int
    /// The text that was applied (YAML or JSON), kept for `GET`; nil when applied as a value.
    public var source: String?
    /// When this revision was applied.
    public var appliedAt: Timestamp

    public var key: StrategyKey { strategy.key }
}

/// What an apply did.
public enum ApplyOutcome: Sendable, Hashable {
    /// The strategy did not exist.
    case created
    /// The content changed; a new revision was stored. Carries the previous revision.
    case configured(previous: StoredStrategy)
    /// Same content as the latest revision; nothing was written.
    case unchanged
}

extension Store {
    /// Stores `strategy` as a new revision when its canonical content differs from the latest one.
    public func putStrategy(
        _ strategy: Strategy, source: String? = nil, now: Timestamp
    ) async throws -> (stored: StoredStrategy, outcome: ApplyOutcome) {
        let content = try StoreJSON.encode(strategy)
        return try await write("store strategy \(strategy.key)") { db in
            let latest = try Self.latestStrategy(db, strategy.key)
            if let latest, try StoreJSON.encode(latest.strategy) == content {
                return (latest, .unchanged)
            }
            let stored = StoredStrategy(
                strategy: strategy, revision: (latest?.revision ?? 0) + 1, source: source, appliedAt: now
            )
            try db.cachedStatement(
                sql: """
                    INSERT INTO strategy_revisions (namespace, name, revision, content, source, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """
            ).execute(
                arguments: [
                    strategy.namespace, strategy.name, stored.revision, content, source, now.millisecondsSinceEpoch,
                ]
            )
            return (stored, latest.map { .configured(previous: $0) } ?? .created)
        }
    }

    /// The latest revision of a strategy, or nil.
    public func strategy(_ key: StrategyKey) async throws -> StoredStrategy? {
        try await read("read strategy \(key)") { db in try Self.latestStrategy(db, key) }
    }

    /// One revision of a strategy (what a rollout runs), or nil.
    public func strategy(_ key: StrategyKey, revision: Int) async throws -> StoredStrategy? {
        try await read("read strategy \(key) revision \(revision)") { db in
            try Self.strategyRevision(db, key, revision: revision)
        }
    }

    /// The latest revision of every strategy, ordered by namespace and name.
    public func strategies() async throws -> [StoredStrategy] {
        try await read("list strategies") { db in
            let rows = try Row.fetchAll(
                try db.cachedStatement(
                    sql: """
                        SELECT s.* FROM strategy_revisions s
                        WHERE s.revision = (SELECT MAX(revision) FROM strategy_revisions
                                            WHERE namespace = s.namespace AND name = s.name)
                        ORDER BY s.namespace, s.name
                        """)
            )
            return try rows.map(Self.decodeStrategy)
        }
    }

    static func latestStrategy(_ db: Database, _ key: StrategyKey) throws -> StoredStrategy? {
        let row = try Row.fetchOne(
            try db.cachedStatement(
                sql: """
                    SELECT * FROM strategy_revisions WHERE namespace = ? AND name = ? ORDER BY revision DESC LIMIT 1
                    """),
            arguments: [key.namespace, key.name]
        )
        return try row.map(decodeStrategy)
    }

    static func strategyRevision(_ db: Database, _ key: StrategyKey, revision: Int) throws -> StoredStrategy? {
        let row = try Row.fetchOne(
            try db.cachedStatement(
                sql: "SELECT * FROM strategy_revisions WHERE namespace = ? AND name = ? AND revision = ?"),
            arguments: [key.namespace, key.name, revision]
        )
        return try row.map(decodeStrategy)
    }

    static func decodeStrategy(_ row: Row) throws -> StoredStrategy {
        let revision: Int = row["revision"]
        let strategy = try StoreJSON.decode(
            Strategy.self, row["content"], what: "strategy \(row["namespace"] as String)/\(row["name"] as String)"
        )
        return StoredStrategy(
            strategy: strategy, revision: revision, source: row["source"],
            appliedAt: Timestamp(millisecondsSinceEpoch: row["created_at"])
        )
    }
}
