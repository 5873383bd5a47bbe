import PostgresNIO
import SluiceCore

extension PostgresStore {
    /// Effects of a rollout in one status (all when nil), oldest first.
    public func effects(rollout: String, status: EffectStatus?) async throws -> [StoredEffect] {
        try await single("read effects of \(rollout)") { connection in
            try await Self.effects(connection, rollout: rollout, status: status, logger: logger)
        }
    }

    /// Ids of rollouts, in any phase, that have effects still pending (to replay after a restart).
    public func rolloutsWithPendingEffects() async throws -> [String] {
        try await single("list rollouts with pending effects") { connection in
            try await connection.rows(
                "SELECT rollout FROM effects WHERE status = 'pending' GROUP BY rollout ORDER BY MIN(id)",
                logger: logger
            ).map { try $0.get("rollout", String.self) }
        }
    }

    /// Marks a pending effect confirmed (carried out). A no-op when it is no longer pending.
    ///
    /// Fenced, in two statements and no transaction: the effect's strategy (it never changes), then the update with
    /// the lease's row taken `FOR SHARE` in the same statement, as `fence` takes it.
    public func confirmEffect(_ id: Int64, now: Timestamp) async throws {
        let what = "confirm effect \(id)"
        guard leases != nil else {
            try await single(what) { connection in
                try await Self.settle(connection, [id], .confirmed, message: nil, now: now, logger: logger)
            }
            return
        }
        guard
            let key = try await single(what, { connection in
                try await connection.row(
                    "SELECT r.namespace, r.name FROM effects e JOIN rollouts r ON r.id = e.rollout WHERE e.id = \(id)",
                    logger: logger
                ).map { row in
                    StrategyKey(
                        namespace: try row.get("namespace", String.self), name: try row.get("name", String.self))
                }
            })
        else { return }  // no such effect: a no-op
        guard let lease = try heldLease(of: key, what: what) else { return }
        let held = try await single(what) { connection in
            try await connection.row(
                """
                WITH fence AS (
                    SELECT epoch FROM shard_leases
                    WHERE shard = \(Int64(lease.shard)) AND holder = \(lease.replica) AND epoch = \(lease.epoch)
                    FOR SHARE
                ),
                confirmed AS (
                    UPDATE effects SET status = 'confirmed', settled_at = \(now.millisecondsSinceEpoch)
                    WHERE id = \(id) AND status = 'pending' AND EXISTS (SELECT 1 FROM fence)
                )
                SELECT EXISTS (SELECT 1 FROM fence) AS held
                """, logger: logger
            )?.get("held", Bool.self) ?? false
        }
        guard held else { throw leaseMoved(lease, key, what: what) }
    }

    /// Marks a pending effect failed with `message`, and every later pending effect of the same rollout abandoned:
    /// they must not run out of order. A no-op when it is no longer pending.
    public func failEffect(_ id: Int64, message: String, now: Timestamp) async throws {
        try await write("record the failure of effect \(id)") { connection in
            try await self.fence(connection, effect: id, what: "record the failure of effect \(id)")
            guard
                let rollout = try await connection.row(
                    "SELECT rollout FROM effects WHERE id = \(id) AND status = 'pending' FOR UPDATE", logger: logger
                )?.get("rollout", String.self)
            else { return }
            try await Self.settle(connection, [id], .failed, message: message, now: now, logger: logger)
            let later = try await connection.rows(
                "SELECT id FROM effects WHERE rollout = \(rollout) AND status = 'pending' AND id > \(id)",
                logger: logger
            ).map { try $0.get("id", Int64.self) }
            try await Self.settle(
                connection, later, .abandoned, message: "an earlier effect failed", now: now, logger: logger)
        }
    }

    /// The most recent samples of one check of a rollout, oldest first (at most `samplesPerCheck`).
    public func samples(rollout: String, check: String) async throws -> [Sample] {
        try await single("read samples of \(rollout)") { connection in
            try await connection.rows(
                "SELECT content FROM samples WHERE rollout = \(rollout) AND check_name = \(check) ORDER BY id",
                logger: logger
            ).map {
                try StoreJSON.decode(Sample.self, try $0.get("content", String.self), what: "a sample of \(rollout)/\(check)")
            }
        }
    }

    /// Drops the samples of every rollout that finished before `cutoff` (by its last update); events, effects and
    /// the rollouts stay. A few rollouts per transaction, so decisions recorded meanwhile wait little.
    public func pruneSamples(ofRolloutsFinishedBefore cutoff: Timestamp) async throws -> Int {
        let finished = try await single("find finished rollouts with samples") { connection in
            try await connection.rows(
                """
                SELECT id FROM rollouts WHERE NOT active AND updated_at < \(cutoff.millisecondsSinceEpoch)
                    AND EXISTS (SELECT 1 FROM samples WHERE samples.rollout = rollouts.id)
                ORDER BY id
                """, logger: logger
            ).map { try $0.get("id", String.self) }
        }
        var dropped = 0
        var start = finished.startIndex
        while start < finished.endIndex {
            let batch = Array(finished[start..<min(start + 20, finished.endIndex)])
            start += batch.count
            dropped += try await write("prune the samples of finished rollouts") { connection in
                try await connection.rows(
                    "DELETE FROM samples WHERE rollout = ANY(\(batch)) RETURNING id", logger: logger
                ).count
            }
        }
        return dropped
    }

    // MARK: - Inside a transaction

    /// Adds a sample and drops the oldest beyond `samplesPerCheck` for that rollout and check, in one statement: the
    /// trim reads the ring as it was before it (one snapshot), so it keeps `samplesPerCheck - 1` old samples beside
    /// the new one.
    func insertSample(_ connection: PostgresConnection, rollout: String, _ sample: Sample) async throws {
        try await connection.run(
            """
            WITH trimmed AS (
                DELETE FROM samples WHERE rollout = \(rollout) AND check_name = \(sample.check) AND id <= (
                    SELECT id FROM samples WHERE rollout = \(rollout) AND check_name = \(sample.check)
                    ORDER BY id DESC LIMIT 1 OFFSET \(samplesPerCheck - 1))
            )
            INSERT INTO samples (rollout, check_name, time, content)
            VALUES (\(rollout), \(sample.check), \(sample.time.millisecondsSinceEpoch), \(try StoreJSON.encode(sample)))
            """, logger: logger)
    }

    static func effects(
        _ connection: PostgresConnection, rollout: String, status: EffectStatus?, logger: Logger
    ) async throws -> [StoredEffect] {
        let rows: [PostgresRandomAccessRow]
        if let status {
            rows = try await connection.rows(
                "SELECT * FROM effects WHERE rollout = \(rollout) AND status = \(status.rawValue) ORDER BY id",
                logger: logger)
        } else {
            rows = try await connection.rows(
                "SELECT * FROM effects WHERE rollout = \(rollout) ORDER BY id", logger: logger)
        }
        return try rows.map { try decodeEffect($0) }
    }

    static func settle(
        _ connection: PostgresConnection, _ ids: [Int64], _ status: EffectStatus, message: String?, now: Timestamp,
        onlyFrom: EffectStatus = .pending, logger: Logger
    ) async throws {
        guard !ids.isEmpty else { return }
        try await connection.run(
            """
            UPDATE effects SET status = \(status.rawValue), message = COALESCE(\(message), message),
                settled_at = \(now.millisecondsSinceEpoch)
            WHERE id = ANY(\(ids)) AND status = \(onlyFrom.rawValue)
            """, logger: logger)
    }

    /// An effect from `row`'s columns, each named `prefix` and the `effects` table's column.
    static func decodeEffect(_ row: PostgresRandomAccessRow, prefix: String = "") throws -> StoredEffect {
        let id = try row.get(prefix + "id", Int64.self)
        let statusText = try row.get(prefix + "status", String.self)
        guard let status = EffectStatus(rawValue: statusText) else {
            throw StoreError(.corruptData, "effect \(id) has an unknown status \(statusText)")
        }
        return StoredEffect(
            id: id, rollout: try row.get(prefix + "rollout", String.self),
            effect: try StoreJSON.decode(
                Effect.self, try row.get(prefix + "content", String.self), what: "effect \(id)"),
            status: status, message: try row.get(prefix + "message", String?.self),
            createdAt: Timestamp(millisecondsSinceEpoch: try row.get(prefix + "created_at", Int64.self)),
            settledAt: try row.get(prefix + "settled_at", Int64?.self).map(Timestamp.init(millisecondsSinceEpoch:)))
    }
}
