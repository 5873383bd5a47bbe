import PostgresNIO
import SluiceCore

extension PostgresStore {
    /// Stores `strategy` as a new revision when its canonical content differs from the latest one.
    public func putStrategy(
        _ strategy: Strategy, source: String?, now: Timestamp
    ) async throws -> (stored: StoredStrategy, outcome: ApplyOutcome) {
        let content = try StoreJSON.encode(strategy)
        return try await write("store strategy \(strategy.key)") { connection in
            // Two replicas applying the same strategy at once: the second waits here and then sees the first's.
            try await Self.lockStrategy(connection, strategy.key, logger: logger)
            let newest = try await Self.newestRevision(connection, strategy.key, logger: logger)
            let latest = newest?.deleted == false ? newest?.stored : nil
            if let latest, try StoreJSON.encode(latest.strategy) == content {
                return (latest, .unchanged)
            }
            let stored = StoredStrategy(
                strategy: strategy, revision: (newest?.stored.revision ?? 0) + 1, source: source, appliedAt: now)
            try await connection.run(
                """
                INSERT INTO strategy_revisions (namespace, name, revision, content, source, created_at)
                VALUES (\(strategy.namespace), \(strategy.name), \(stored.revision), \(content), \(source),
                    \(now.millisecondsSinceEpoch))
                """, logger: logger)
            return (stored, latest.map { .configured(previous: $0) } ?? .created)
        }
    }

    /// Deletes strategy `key` (see `Store.deleteStrategy`): refused with `activeRollout` while a rollout of it is
    /// active, `notFound` when it does not exist. Returns what was deleted.
    public func deleteStrategy(_ key: StrategyKey, now: Timestamp) async throws -> StoredStrategy {
        try await write("delete strategy \(key)") { connection in
            try await Self.lockStrategy(connection, key, logger: logger)
            guard let latest = try await Self.latestStrategy(connection, key, logger: logger) else {
                throw StoreError(.notFound, "no strategy \(key)")
            }
            if let active = try await Self.activeRolloutID(connection, key, logger: logger) {
                throw StoreError(
                    .activeRollout,
                    "strategy \(key) has an active rollout \(active): roll it back or let it finish, then delete")
            }
            try await connection.run(
                """
                INSERT INTO strategy_deletions (namespace, name, revision, deleted_at)
                VALUES (\(key.namespace), \(key.name), \(latest.revision), \(now.millisecondsSinceEpoch))
                """, logger: logger)
            return latest
        }
    }

    /// The latest revision of a strategy, or nil.
    public func strategy(_ key: StrategyKey) async throws -> StoredStrategy? {
        try await single("read strategy \(key)") { connection in
            try await Self.latestStrategy(connection, key, logger: logger)
        }
    }

    /// One revision of a strategy (what a rollout runs), or nil.
    public func strategy(_ key: StrategyKey, revision: Int) async throws -> StoredStrategy? {
        try await single("read strategy \(key) revision \(revision)") { connection in
            try await Self.strategyRevision(connection, key, revision: revision, logger: logger)
        }
    }

    /// The latest revision of every strategy, ordered by namespace and name.
    public func strategies() async throws -> [StoredStrategy] {
        try await single("list strategies") { connection in
            try await connection.rows(
                """
                SELECT s.* FROM (
                    SELECT DISTINCT ON (namespace, name) * FROM strategy_revisions
                    ORDER BY namespace, name, revision DESC
                ) s
                WHERE NOT EXISTS (SELECT 1 FROM strategy_deletions d
                                  WHERE d.namespace = s.namespace AND d.name = s.name AND d.revision = s.revision)
                ORDER BY s.namespace, s.name
                """, logger: logger
            ).map(Self.decodeStrategy)
        }
    }

    // MARK: - Inside a transaction

    /// Serializes the writes of one strategy's revisions, deletion and rollout starts (a transaction-scoped advisory
    /// lock keyed by the strategy): revision numbers and the one-active-rollout check hold across replicas.
    static func lockStrategy(_ connection: PostgresConnection, _ key: StrategyKey, logger: Logger) async throws {
        try await connection.run(
            "SELECT pg_advisory_xact_lock(hashtextextended(\(key.namespace + "/" + key.name), 0))", logger: logger)
    }

    static func latestStrategy(_ connection: PostgresConnection, _ key: StrategyKey, logger: Logger) async throws
        -> StoredStrategy?
    {
        guard let newest = try await newestRevision(connection, key, logger: logger), !newest.deleted else { return nil }
        return newest.stored
    }

    /// The newest revision of a strategy, deleted or not (and which), in one query.
    static func newestRevision(_ connection: PostgresConnection, _ key: StrategyKey, logger: Logger) async throws
        -> (stored: StoredStrategy, deleted: Bool)?
    {
        try await connection.row(
            """
            SELECT s.*, EXISTS (SELECT 1 FROM strategy_deletions d
                                WHERE d.namespace = s.namespace AND d.name = s.name AND d.revision = s.revision)
                AS deleted
            FROM strategy_revisions s WHERE s.namespace = \(key.namespace) AND s.name = \(key.name)
            ORDER BY s.revision DESC LIMIT 1
            """, logger: logger
        ).map { (try decodeStrategy($0), try $0.get("deleted", Bool.self)) }
    }

    static func strategyRevision(
        _ connection: PostgresConnection, _ key: StrategyKey, revision: Int, logger: Logger
    ) async throws -> StoredStrategy? {
        try await connection.row(
            """
            SELECT * FROM strategy_revisions
            WHERE namespace = \(key.namespace) AND name = \(key.name) AND revision = \(revision)
            """, logger: logger
        ).map(decodeStrategy)
    }

    static func decodeStrategy(_ row: PostgresRandomAccessRow) throws -> StoredStrategy {
        let namespace = try row.get("namespace", String.self), name = try row.get("name", String.self)
        let strategy = try StoreJSON.decode(
            Strategy.self, try row.get("content", String.self), what: "strategy \(namespace)/\(name)")
        return StoredStrategy(
            strategy: strategy, revision: try row.get("revision", Int.self),
            source: try row.get("source", String?.self),
            appliedAt: Timestamp(millisecondsSinceEpoch: try row.get("created_at", Int64.self)))
    }
}
