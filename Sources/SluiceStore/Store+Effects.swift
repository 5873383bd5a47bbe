import GRDB
import SluiceCore

/// Where an effect is in its life.
public enum EffectStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Recorded with its decision, not yet carried out (or carried out but not confirmed: replayed).
    case pending
    /// Carried out and confirmed.
    case confirmed
    /// Tried and failed; the next decision is told about it.
    case failed
    /// A failure that a later decision was told about.
    case reported
    /// Made moot by a rollback recorded before it ran.
    case superseded
    /// Not run because an earlier effect of the same rollout failed (order matters: traffic first).
    case abandoned
}

/// One effect as stored.
public struct StoredEffect: Sendable, Hashable {
    /// Increasing in the order effects were recorded; effects of a rollout run in this order.
    public var id: Int64
    public var rollout: String
    public var effect: Effect
    public var status: EffectStatus
    public var message: String?
    public var createdAt: Timestamp
    public var settledAt: Timestamp?

    public init(
        id: Int64, rollout: String, effect: Effect, status: EffectStatus, message: String? = nil,
        createdAt: Timestamp, settledAt: Timestamp? = nil
    ) {
        self.id = id
        self.rollout = rollout
        self.effect = effect
        self.status = status
        self.message = message
        self.createdAt = createdAt
        self.settledAt = settledAt
    }
}

extension Store {
    /// Effects of a rollout in one status (all when nil), oldest first.
    public func effects(rollout: String, status: EffectStatus?) async throws -> [StoredEffect] {
        try await read("read effects of \(rollout)") { db in try Self.effects(db, rollout: rollout, status: status) }
    }

    static func effects(_ db: Database, rollout: String, status: EffectStatus?) throws -> [StoredEffect] {
        let rows: [Row]
        if let status {
            rows = try Row.fetchAll(
                try db.cachedStatement(sql: "SELECT * FROM effects WHERE rollout = ? AND status = ? ORDER BY id"),
                arguments: [rollout, status.rawValue]
            )
        } else {
            rows = try Row.fetchAll(
                try db.cachedStatement(sql: "SELECT * FROM effects WHERE rollout = ? ORDER BY id"), arguments: [rollout]
            )
        }
        return try rows.map(decodeEffect)
    }

    /// Ids of rollouts, in any phase, that have effects still pending (to replay after a restart).
    public func rolloutsWithPendingEffects() async throws -> [String] {
        try await read("list rollouts with pending effects") { db in
            try String.fetchAll(
                try db.cachedStatement(
                    sql: "SELECT rollout FROM effects WHERE status = 'pending' GROUP BY rollout ORDER BY MIN(id)")
            )
        }
    }

    /// Marks a pending effect confirmed (carried out). A no-op when it is no longer pending.
    public func confirmEffect(_ id: Int64, now: Timestamp) async throws {
        try await write("confirm effect \(id)") { db in
            try Self.settle(db, [id], .confirmed, message: nil, now: now, onlyFrom: .pending)
        }
    }

    /// Marks a pending effect failed with `message`, and every later pending effect of the same rollout
    /// abandoned: they must not run out of order. A no-op when it is no longer pending.
    public func failEffect(_ id: Int64, message: String, now: Timestamp) async throws {
        try await write("record the failure of effect \(id)") { db in
            guard
                let rollout = try String.fetchOne(
                    try db.cachedStatement(sql: "SELECT rollout FROM effects WHERE id = ? AND status = 'pending'"),
                    arguments: [id]
                )
            else { return }
            try Self.settle(db, [id], .failed, message: message, now: now, onlyFrom: .pending)
            let later = try Int64.fetchAll(
                try db.cachedStatement(
                    sql: "SELECT id FROM effects WHERE rollout = ? AND status = 'pending' AND id > ?"),
                arguments: [rollout, id]
            )
            try Self.settle(db, later, .abandoned, message: "an earlier effect failed", now: now, onlyFrom: .pending)
        }
    }

    static func settle(
        _ db: Database, _ ids: [Int64], _ status: EffectStatus, message: String?, now: Timestamp,
        onlyFrom: EffectStatus = .pending
    ) throws {
        for id in ids {
            try db.cachedStatement(
                sql: """
                    UPDATE effects SET status = ?, message = COALESCE(?, message), settled_at = ?
                    WHERE id = ? AND status = ?
                    """
            ).execute(
                arguments: [status.rawValue, message, now.millisecondsSinceEpoch, id, onlyFrom.rawValue]
            )
        }
    }

    static func decodeEffect(_ row: Row) throws -> StoredEffect {
        let id: Int64 = row["id"]
        let statusText: String = row["status"]
        guard let status = EffectStatus(rawValue: statusText) else {
            throw StoreError(.corruptData, "effect \(id) has an unknown status \(statusText)")
        }
        return StoredEffect(
            id: id, rollout: row["rollout"],
            effect: try StoreJSON.decode(Effect.self, row["content"], what: "effect \(id)"),
            status: status, message: row["message"], createdAt: Timestamp(millisecondsSinceEpoch: row["created_at"]),
            settledAt: (row["settled_at"] as Int64?).map(Timestamp.init(millisecondsSinceEpoch:))
        )
    }
}
