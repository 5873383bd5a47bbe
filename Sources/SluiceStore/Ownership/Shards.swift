import SluiceCore

/// Rollouts are spread over a fixed number of shards by their strategy's key, and each shard is leased to one
/// replica at a time (docs/ha.md "Leases and fencing"). The hash is FNV-1a (64 bits) of the key's UTF-8 text
/// `namespace/name`, modulo `count`: written down here and in docs/ha.md, and never changed, because replicas of two
/// versions must agree on which shard a rollout is in.
public enum Shards {
    /// How many shards there are.
    public static let count = 64

    /// The shard of every rollout of strategy `key`.
    public static func of(_ key: StrategyKey) -> Int {
        Int(fnv1a("\(key.namespace)/\(key.name)") % UInt64(count))
    }

    /// FNV-1a, 64 bits, of `text`'s UTF-8 bytes (a spreading hash, not a cryptographic one).
    public static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a's offset basis
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3  // FNV-1a's prime
        }
        return hash
    }
}

/// One row of the lease table as a replica read it.
public struct ShardLease: Sendable, Hashable {
    public var shard: Int
    /// The replica holding it, nil when it was given back (or never taken).
    public var holder: String?
    /// Goes up by one each time the shard is taken: the fence every write of its rollouts carries.
    public var epoch: Int64
    /// Whether its expiry has passed, by the database's clock (so no two replicas' clocks need agree).
    public var expired: Bool

    public init(shard: Int, holder: String?, epoch: Int64, expired: Bool) {
        self.shard = shard
        self.holder = holder
        self.epoch = epoch
        self.expired = expired
    }

    /// Whether a replica may take it: nobody holds it, or its holder let it expire.
    public var isFree: Bool { holder == nil || expired }
}

/// What one replica read of the leases: every shard's row and the replicas whose heartbeat is live.
public struct LeaseTable: Sendable, Hashable {
    public var leases: [ShardLease]
    /// Replicas whose heartbeat has not expired, this one included once it has sent one.
    public var liveReplicas: Set<String>

    public init(leases: [ShardLease], liveReplicas: Set<String>) {
        self.leases = leases
        self.liveReplicas = liveReplicas
    }
}

/// The shards this replica holds, with the epoch it took each at: the fence its store writes carry. The lease
/// manager (SluiceController/Ownership) keeps it current; the PostgreSQL store reads it in every write for a
/// rollout and refuses the write (`fenced`) unless the lease row still names this replica at that epoch.
public final class LeaseView: Sendable {
    /// This replica's id, as written in the lease rows.
    public let replica: String
    private let held = Locked<[Int: Int64]>([:])

    public init(replica: String) { self.replica = replica }

    /// The epoch this replica holds `shard` at, nil when it does not hold it.
    public func epoch(of shard: Int) -> Int64? { held.withLock { $0[shard] } }

    /// Every shard held, with its epoch.
    public var shards: [Int: Int64] { held.current }

    /// Replaces what is held.
    public func set(_ shards: [Int: Int64]) { held.withLock { $0 = shards } }
}

/// The lease table's operations, for the lease manager. Only a store shared by several replicas has them
/// (PostgreSQL); with SQLite one replica owns everything and nothing is leased.
public protocol LeaseStore: Sendable {
    /// In one transaction: the heartbeat of `replica` (live for `duration`), the renewal of the leases in `held` that
    /// still name it at those epochs (each expires `duration` after the database's now), and the table as it is
    /// then. Returns the shards renewed and the table.
    func renewLeases(_ held: [Int: Int64], replica: String, name: String, duration: Duration) async throws
        -> (renewed: Set<Int>, table: LeaseTable)

    /// Takes each shard of `shards` that is free (or still names `replica`), bumping its epoch, for `duration`.
    /// Returns the shards taken with their new epochs; a shard another replica took first is left out.
    func acquireLeases(_ shards: [Int], replica: String, duration: Duration) async throws -> [Int: Int64]

    /// Gives back the leases in `held` that still name `replica` at those epochs; with `leaving`, the heartbeat
    /// of `replica` goes too (a graceful stop, so the others rebalance at once).
    func releaseLeases(_ held: [Int: Int64], replica: String, leaving: Bool) async throws
}
