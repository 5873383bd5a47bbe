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
        _ strategy: Strategy, source: String?, now: Timestamp
    ) async throws -> (stored: StoredStrategy, outcome: ApplyOutcome) {
        let content = try StoreJSON.encode(strategy)
        return try await write("store strategy \(strategy.key)") { db in
            // Revisions are numbered on from a deleted strategy's last one: rollouts of the deleted strategy keep
            // naming their own revision.
            let newest = try Self.newestRevision(db, strategy.key)
            let latest = try newest.flatMap { try Self.isDeleted(db, $0) ? nil : $0 }
            if let latest, try StoreJSON.encode(latest.strategy) == content {
                return (latest, .unchanged)
            }
            let stored = StoredStrategy(
                strategy: strategy, revision: (newest?.revision ?? 0) + 1, source: source, appliedAt: now
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

    /// Deletes strategy `key`: it is no longer listed, read or started, and applying it again creates it anew (as
    /// the next revision). Its rollouts, their revisions and the event log keep its history. Refused with
    /// `activeRollout` while a rollout of it is active, `notFound` when it does not exist. Returns what was deleted.
    public func deleteStrategy(_ key: StrategyKey, now: Timestamp) async throws -> StoredStrategy {
        try await write("delete strategy \(key)") { db in
            guard let latest = try Self.latestStrategy(db, key) else {
                throw StoreError(.notFound, "no strategy \(key)")
            }
            if let active = try String.fetchOne(
                try db.cachedStatement(sql: "SELECT id FROM rollouts WHERE namespace = ? AND name = ? AND active = 1"),
                arguments: [key.namespace, key.name]
            ) {
                throw StoreError(
                    .activeRollout,
                    "strategy \(key) has an active rollout \(active): roll it back or let it finish, then delete")
            }
            try db.cachedStatement(
                sql: "INSERT INTO strategy_deletions (namespace, name, revision, deleted_at) VALUES (?, ?, ?, ?)"
            ).execute(arguments: [key.namespace, key.name, latest.revision, now.millisecondsSinceEpoch])
            return latest
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
                          AND NOT EXISTS (SELECT 1 FROM strategy_deletions d
                                          WHERE d.namespace = s.namespace AND d.name = s.name
                                            AND d.revision = s.revision)
                        ORDER BY s.namespace, s.name
                        """)
            )
            return try rows.map(Self.decodeStrategy)
        }
    }

    /// The latest revision of a strategy that is not deleted, or nil.
    static func latestStrategy(_ db: Database, _ key: StrategyKey) throws -> StoredStrategy? {
        guard let newest = try newestRevision(db, key), !(try isDeleted(db, newest)) else { return nil }
        return newest
    }

    /// Whether `stored` is the last revision of a deleted strategy.
    static func isDeleted(_ db: Database, _ stored: StoredStrategy) throws -> Bool {
        try Bool.fetchOne(
            try db.cachedStatement(
                sql: "SELECT 1 FROM strategy_deletions WHERE namespace = ? AND name = ? AND revision = ?"),
            arguments: [stored.key.namespace, stored.key.name, stored.revision]
        ) ?? false
    }

    /// The newest revision of a strategy, deleted or not.
    static func newestRevision(_ db: Database, _ key: StrategyKey) throws -> StoredStrategy? {
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
