import PostgresNIO
import SluiceCore

extension PostgresStore: LeaseStore {
    /// Heartbeat, renewal of `held` and a read of the whole table, in one transaction (one round trip's worth of
    /// statements). A lease is renewed only while it names `replica` at the epoch held: one another replica took
    /// meanwhile (its epoch went up) is lost, and the caller learns it from `renewed`.
    public func renewLeases(_ held: [Int: Int64], replica: String, name: String, duration: Duration) async throws
        -> (renewed: Set<Int>, table: LeaseTable)
    {
        let milliseconds = duration.milliseconds
        return try await write("renew the leases of \(replica)") { connection in
            try await connection.run(
                """
                INSERT INTO replicas (id, name, expires_at)
                VALUES (\(replica), \(name), now() + \(milliseconds) * interval '1 millisecond')
                ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
                """, logger: logger)
            var renewed: Set<Int> = []
            if !held.isEmpty {
                let shards = held.keys.sorted()
                renewed = Set(
                    try await connection.rows(
                        """
                        UPDATE shard_leases AS s SET expires_at = now() + \(milliseconds) * interval '1 millisecond'
                        FROM UNNEST(\(shards.map(Int64.init))::BIGINT[], \(shards.map { held[$0]! })::BIGINT[])
                            AS h(shard, epoch)
                        WHERE s.shard = h.shard AND s.epoch = h.epoch AND s.holder = \(replica)
                        RETURNING s.shard
                        """, logger: logger
                    ).map { Int(try $0.get("shard", Int32.self)) })
            }
            let leases = try await connection.rows(
                """
                SELECT shard, holder, epoch, COALESCE(expires_at <= now(), TRUE) AS expired
                FROM shard_leases ORDER BY shard
                """, logger: logger
            ).map { row in
                ShardLease(
                    shard: Int(try row.get("shard", Int32.self)), holder: try row.get("holder", String?.self),
                    epoch: try row.get("epoch", Int64.self), expired: try row.get("expired", Bool.self))
            }
            let live = try await connection.rows(
                "SELECT id FROM replicas WHERE expires_at > now()", logger: logger
            ).map { try $0.get("id", String.self) }
            return (renewed, LeaseTable(leases: leases, liveReplicas: Set(live)))
        }
    }

    /// Takes the free shards of `shards` (and those still naming `replica`), each with its epoch bumped.
    public func acquireLeases(_ shards: [Int], replica: String, duration: Duration) async throws -> [Int: Int64] {
        guard !shards.isEmpty else { return [:] }
        let milliseconds = duration.milliseconds
        return try await write("acquire leases for \(replica)") { connection in
            var taken: [Int: Int64] = [:]
            // One conditional UPDATE: a row another replica renewed meanwhile no longer matches and stays its.
            for row in try await connection.rows(
                """
                UPDATE shard_leases SET holder = \(replica), epoch = epoch + 1,
                    expires_at = now() + \(milliseconds) * interval '1 millisecond'
                WHERE shard = ANY(\(shards.map(Int64.init))::BIGINT[])
                    AND (holder IS NULL OR expires_at IS NULL OR expires_at <= now() OR holder = \(replica))
                RETURNING shard, epoch
                """, logger: logger)
            {
                taken[Int(try row.get("shard", Int32.self))] = try row.get("epoch", Int64.self)
            }
            return taken
        }
    }

    /// Gives back the leases of `held` still naming `replica` at those epochs (and, `leaving`, the heartbeat).
    public func releaseLeases(_ held: [Int: Int64], replica: String, leaving: Bool) async throws {
        try await write("release leases of \(replica)") { connection in
            if !held.isEmpty {
                let shards = held.keys.sorted()
                try await connection.run(
                    """
                    UPDATE shard_leases AS s SET holder = NULL, expires_at = NULL
                    FROM UNNEST(\(shards.map(Int64.init))::BIGINT[], \(shards.map { held[$0]! })::BIGINT[])
                        AS h(shard, epoch)
                    WHERE s.shard = h.shard AND s.epoch = h.epoch AND s.holder = \(replica)
                    """, logger: logger)
            }
            if leaving {
                try await connection.run("DELETE FROM replicas WHERE id = \(replica)", logger: logger)
            }
        }
    }

    // MARK: - Inside a transaction

    /// Refuses (`fenced`) a write for a rollout of `key` unless this replica holds the rollout's shard, at the epoch
    /// it took it at, in the database: the lease row is read `FOR SHARE`, so a replica taking the shard (an UPDATE of
    /// that row) waits for this transaction, and every write after its commit sees the new epoch. Nothing is checked
    /// when the store has no lease view (SQLite-like single-replica use, and tests of the store alone).
    func fence(_ connection: PostgresConnection, _ key: StrategyKey, what: String) async throws {
        guard let lease = try heldLease(of: key, what: what) else { return }
        let held = try await connection.row(
            """
            SELECT epoch FROM shard_leases WHERE shard = \(Int64(lease.shard)) AND holder = \(lease.replica)
                AND epoch = \(lease.epoch) FOR SHARE
            """, logger: logger)
        guard held != nil else { throw leaseMoved(lease, key, what: what) }
    }

    /// The lease a write for a rollout of `key` is fenced by: this replica's shard of `key` and the epoch it holds it
    /// at, as the lease view says (nil without a lease view: nothing to fence). Refuses (`fenced`) at once when the
    /// view holds no lease of that shard; the database checks the rest.
    func heldLease(of key: StrategyKey, what: String) throws -> HeldLease? {
        guard let leases else { return nil }
        let shard = Shards.of(key)
        guard let epoch = leases.epoch(of: shard) else {
            throw StoreError(.fenced, "cannot \(what): this replica does not hold shard \(shard) of \(key)")
        }
        return HeldLease(shard: shard, epoch: epoch, replica: leases.replica)
    }

    /// The refusal of a write whose lease the database no longer has at this replica's epoch.
    func leaseMoved(_ lease: HeldLease, _ key: StrategyKey, what: String) -> StoreError {
        StoreError(
            .fenced,
            "cannot \(what): the lease of shard \(lease.shard) (\(key)) moved past epoch \(lease.epoch) to another "
                + "replica")
    }

    /// `fence` for the rollout an effect belongs to.
    func fence(_ connection: PostgresConnection, effect id: Int64, what: String) async throws {
        guard leases != nil else { return }
        guard
            let row = try await connection.row(
                "SELECT r.namespace, r.name FROM effects e JOIN rollouts r ON r.id = e.rollout WHERE e.id = \(id)",
                logger: logger)
        else { return }  // no such effect: the write is a no-op
        let key = StrategyKey(namespace: try row.get("namespace", String.self), name: try row.get("name", String.self))
        try await fence(connection, key, what: what)
    }
}

/// A shard lease this replica holds, as a fenced write names it to the database.
struct HeldLease: Sendable {
    var shard: Int
    var epoch: Int64
    var replica: String
}
