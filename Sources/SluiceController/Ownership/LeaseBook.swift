import SluiceStore

/// How long a replica's leases last and how often it renews them (docs/ha.md "Leases and fencing").
public struct LeaseOptions: Sendable, Hashable {
    /// How long a lease (and a replica's heartbeat) lasts after the database took its renewal.
    public var duration: Duration
    /// How often a replica renews its leases, reads the table and rebalances.
    public var renewEvery: Duration

    /// The defaults: 15 s leases, renewed every 5 s (two renewals may fail before a replica stops acting).
    public init(duration: Duration = .seconds(15), renewEvery: Duration = .seconds(5)) {
        self.duration = duration
        self.renewEvery = renewEvery
    }

    /// Taken off a replica's own deadline: its clock may run slower than the database's, and between its check and
    /// its write to a router some time passes. A fifth of the lease (3 s of 15 s).
    public var safetyMargin: Duration { duration / 5 }
}

/// What to do with the lease table after a renewal: shards to take (free ones, up to this replica's fair share) and
/// shards to give back (beyond it, so that a replica that joined gets its share).
public struct LeasePlan: Sendable, Hashable {
    public var take: [Int]
    public var giveUp: [Int]

    public init(take: [Int] = [], giveUp: [Int] = []) {
        self.take = take
        self.giveUp = giveUp
    }
}

/// One replica's leases, pure: which shards it holds at which epoch, until when (on its own monotonic clock) it may
/// act on them, and what it takes or gives back given the table it read. `ShardOwnership` carries out what this
/// decides; LeaseBookTests drive it on a virtual clock.
public struct LeaseBook: Sendable, Hashable {
    public let replica: String
    public let options: LeaseOptions
    public let shardCount: Int
    /// The shards held, with the epoch each was taken at.
    public private(set) var held: [Int: Int64] = [:]
    /// After this moment (monotonic) the replica acts on nothing: measured from when it SENT the last renewal the
    /// database took, so it comes before the database can let the leases expire (they expire `duration` after the
    /// database ran the renewal, which is later), less the safety margin. Nil until a renewal succeeds.
    public private(set) var deadline: Duration?

    public init(replica: String, options: LeaseOptions, shardCount: Int = Shards.count) {
        self.replica = replica
        self.options = options
        self.shardCount = shardCount
    }

    /// Whether the replica's view of the leases is still good at `now` (a renewal succeeded recently enough).
    public func isValid(at now: Duration) -> Bool {
        deadline.map { now < $0 } ?? false
    }

    /// Whether the replica may act (record, write a router) for a rollout in `shard` at `now`.
    public func mayAct(on shard: Int, at now: Duration) -> Bool {
        held[shard] != nil && isValid(at: now)
    }

    /// A renewal sent at `sentAt` was taken: the shards in `renewed` are held until the new deadline; the others held
    /// were taken by another replica meanwhile, and are returned (lost).
    public mutating func renewed(_ renewed: Set<Int>, sentAt: Duration) -> [Int] {
        let lost = held.keys.filter { !renewed.contains($0) }.sorted()
        for shard in lost { held[shard] = nil }
        deadline = sentAt + options.duration - options.safetyMargin
        return lost
    }

    /// What to take and give back, given the table read with the last renewal. The fair share is
    /// ceil(shards / live replicas); above it the highest shards go back, below it rows that still name this replica
    /// (it lost them to its own deadline, and nobody took them) are taken first, then free shards from a place that
    /// depends on the replica's id, so replicas starting together mostly ask for different shards.
    public func plan(_ table: LeaseTable) -> LeasePlan {
        let live = table.liveReplicas.union([replica])
        let share = (shardCount + live.count - 1) / live.count
        if held.count > share {
            return LeasePlan(giveUp: Array(held.keys.sorted().suffix(held.count - share)))
        }
        let wanted = share - held.count
        guard wanted > 0 else { return LeasePlan() }
        let start = Int(Shards.fnv1a(replica) % UInt64(shardCount))
        func place(_ lease: ShardLease) -> (Int, Int) {
            // Rows still naming this replica first: nobody else has taken them, and its rollouts were just driven here.
            (lease.holder == replica ? 0 : 1, (lease.shard - start + shardCount) % shardCount)
        }
        let candidates = table.leases
            .filter { held[$0.shard] == nil && ($0.isFree || $0.holder == replica) }
            .sorted { place($0) < place($1) }
            .map(\.shard)
        return LeasePlan(take: Array(candidates.prefix(wanted)))
    }

    /// Shards taken by an acquisition sent at `sentAt`, with their new epochs.
    public mutating func acquired(_ taken: [Int: Int64], sentAt: Duration) {
        guard !taken.isEmpty else { return }
        held.merge(taken) { _, new in new }
        let until = sentAt + options.duration - options.safetyMargin
        deadline = deadline.map { min($0, until) } ?? until
    }

    /// Gives up `shards`; returns those that were held, with their epochs (to release in the table).
    public mutating func released(_ shards: [Int]) -> [Int: Int64] {
        var given: [Int: Int64] = [:]
        for shard in shards {
            if let epoch = held.removeValue(forKey: shard) { given[shard] = epoch }
        }
        return given
    }

    /// At or past the deadline: everything held is lost (the leases may have expired in the database and been taken);
    /// returns what was held. Before it: nothing changes.
    public mutating func expire(at now: Duration) -> [Int] {
        guard let deadline, now >= deadline else { return [] }
        let lost = held.keys.sorted()
        held = [:]
        self.deadline = nil
        return lost
    }
}
