import GRDB
import SluiceCore

/// A rollout as stored, with the generation that `record` checks to detect concurrent decisions.
public struct RolloutRecord: Sendable, Hashable {
    public var rollout: Rollout
    /// Bumped by every recorded decision of this rollout.
    public var generation: Int64
    /// When the controller last observed the rollout for a recorded tick (nil before the first tick).
    public var observedAt: Timestamp?

    public init(rollout: Rollout, generation: Int64, observedAt: Timestamp?) {
        self.rollout = rollout
        self.generation = generation
        self.observedAt = observedAt
    }
}

/// What one recorded decision wrote, as committed: events carry their `seq`, effects their id.
public struct RecordedDecision: Sendable, Hashable {
    public var previous: Rollout?
    public var rollout: Rollout
    public var generation: Int64
    public var events: [Event]
    public var effects: [StoredEffect]
    /// Pending effects of earlier decisions that this one made moot (a rollback supersedes them).
    public var supersededEffects: [Int64]
}

extension Store {
    /// Starts a rollout of the strategy's latest revision in one transaction: refuses when the strategy
    /// has an active rollout, assigns the id (`r-YYYYMMDD-NNNN`), resolves the pool roles, and records
    /// the decision `build` returns (typically `Rollout.start`).
    public func startRollout(
        strategy key: StrategyKey, now: Timestamp,
        _ build: @escaping @Sendable (_ id: String, _ strategy: StoredStrategy, _ pools: Pools?) throws -> Decision
    ) async throws -> RecordedDecision {
        try await write("start a rollout of \(key)") { db in
            guard let stored = try Self.latestStrategy(db, key) else {
                throw StoreError(.notFound, "strategy \(key) does not exist")
            }
            if let active = try String.fetchOne(
                try db.cachedStatement(sql: "SELECT id FROM rollouts WHERE namespace = ? AND name = ? AND active = 1"),
                arguments: [key.namespace, key.name]
            ) {
                throw StoreError(.activeRollout, "strategy \(key) already has an active rollout \(active)")
            }
            let id = try Self.nextRolloutID(db, now: now)
            let decision = try build(id, stored, try Self.poolRoles(db, stored.strategy))
            guard decision.rollout.id == id, decision.rollout.strategy == key else {
                throw StoreError(.invalidDecision, "the start decision is for \(decision.rollout.id), not \(id)")
            }
            try db.cachedStatement(
                sql: """
                    INSERT INTO rollouts (id, namespace, name, phase, active, generation, created_at, updated_at,
                        content) VALUES (?, ?, ?, 'Pending', 1, 0, ?, ?, '{}')
                    """
            ).execute(
                arguments: [id, key.namespace, key.name, now.millisecondsSinceEpoch, now.millisecondsSinceEpoch]
            )
            return try self.apply(db, decision, previous: nil, generation: 0, samples: [], reported: [], now: now)
        }
    }

    /// Records the decision `decide` makes from the rollout's current state (`RolloutStore.record`).
    public func record(
        _ tick: TickRecord, _ decide: @escaping @Sendable (Rollout, StoredStrategy) throws -> Decision?
    ) async throws -> RecordedDecision? {
        let rolloutID = tick.rolloutID
        return try await write("record a decision of \(rolloutID)") { db -> RecordedDecision? in
            let current = try Self.current(db, tick)
            let stored = try Self.revision(db, of: current.rollout, known: tick.strategy)
            guard let decision = try decide(current.rollout, stored) else { return nil }
            guard decision.rollout.id == rolloutID else {
                throw StoreError(.invalidDecision, "a decision for \(decision.rollout.id) recorded as \(rolloutID)")
            }
            return try self.apply(
                db, decision, previous: current.rollout, generation: current.generation, samples: tick.samples,
                reported: tick.reportedFailures, observedAt: tick.observedAt, now: tick.now
            )
        }
    }

    /// The rollout a decision is made from: the caller's read when its generation is still the stored one (the
    /// stored row is then not decoded again: the controller's ticks run in the one writer and must be cheap),
    /// else the stored rollout.
    private static func current(_ db: Database, _ tick: TickRecord) throws -> RolloutRecord {
        let id = tick.rolloutID
        guard let read = tick.basedOn, read.rollout.id == id else {
            guard let stored = try rolloutRecord(db, id) else {
                throw StoreError(.notFound, "rollout \(id) does not exist")
            }
            return stored
        }
        guard
            let generation = try Int64.fetchOne(
                try db.cachedStatement(sql: "SELECT generation FROM rollouts WHERE id = ?"), arguments: [id])
        else { throw StoreError(.notFound, "rollout \(id) does not exist") }
        guard generation == read.generation else {
            throw StoreError(.staleState, "rollout \(id) changed since it was read")
        }
        return read
    }

    /// The strategy revision `rollout` runs: `known` when it is that revision (revisions are immutable, so the
    /// caller's copy is the stored one), else read.
    private static func revision(_ db: Database, of rollout: Rollout, known: StoredStrategy?) throws
        -> StoredStrategy
    {
        let key = rollout.strategy
        let revision = rollout.strategyRevision
        if let known, known.key == key, known.revision == revision { return known }
        guard let found = try strategyRevision(db, key, revision: revision) else {
            throw StoreError(.notFound, "strategy \(key) revision \(revision) is missing")
        }
        return found
    }

    /// One rollout with its generation, or nil.
    public func rolloutRecord(_ id: String) async throws -> RolloutRecord? {
        try await read("read rollout \(id)") { db in try Self.rolloutRecord(db, id) }
    }

    /// One rollout with its generation (nil when there is none) and its effects in `status`, oldest first,
    /// from one snapshot: what a controller tick reads, in one read instead of two. With `known` (the record
    /// the caller last saw), the stored rollout is decoded only when its generation moved since.
    public func rolloutRecord(_ id: String, effects status: EffectStatus, known: RolloutRecord?) async throws
        -> (record: RolloutRecord?, effects: [StoredEffect])
    {
        try await read("read rollout \(id) and its \(status.rawValue) effects") { db in
            let record: RolloutRecord
            if let known, known.rollout.id == id,
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT generation, observed_at FROM rollouts WHERE id = ?"), arguments: [id]),
                row["generation"] == known.generation
            {
                // Every decision bumps the generation, so the same generation is the same stored rollout.
                let observedAt = (row["observed_at"] as Int64?).map(Timestamp.init(millisecondsSinceEpoch:))
                record = RolloutRecord(rollout: known.rollout, generation: known.generation, observedAt: observedAt)
            } else {
                guard let stored = try Self.rolloutRecord(db, id) else { return (nil, []) }
                record = stored
            }
            return (record, try Self.effects(db, rollout: id, status: status))
        }
    }

    /// Every rollout not in a terminal phase, oldest first: what the controller drives.
    public func activeRollouts() async throws -> [Rollout] {
        try await read("list active rollouts") { db in
            let rows = try Row.fetchAll(
                try db.cachedStatement(sql: "SELECT * FROM rollouts WHERE active = 1 ORDER BY created_at, id"))
            return try rows.map { try Self.decodeRollout($0).rollout }
        }
    }

    /// The active rollout of a strategy, or nil.
    public func activeRollout(of key: StrategyKey) async throws -> Rollout? {
        try await read("read the active rollout of \(key)") { db in
            let row = try Row.fetchOne(
                try db.cachedStatement(sql: "SELECT * FROM rollouts WHERE namespace = ? AND name = ? AND active = 1"),
                arguments: [key.namespace, key.name]
            )
            return try row.map { try Self.decodeRollout($0).rollout }
        }
    }

    /// The pools in their current roles for a strategy's next rollout (nil for `deployment` targets).
    public func poolRoles(_ key: StrategyKey) async throws -> Pools? {
        try await read("read the pool roles of \(key)") { db in
            guard let stored = try Self.latestStrategy(db, key) else { return nil }
            return try Self.poolRoles(db, stored.strategy)
        }
    }

    // MARK: - Inside a transaction

    /// Writes a decision and arranges for its events to be published once the transaction commits. `observedAt`,
    /// when given, becomes the rollout's observation time (in the same statement as its new state).
    func apply(
        _ db: Database, _ decision: Decision, previous: Rollout?, generation: Int64, samples: [Sample],
        reported: [Int64], observedAt: Timestamp? = nil, now: Timestamp
    ) throws -> RecordedDecision {
        let rollout = decision.rollout
        try Self.writeState(db, rollout, previous: previous, generation: generation + 1, observedAt: observedAt)
        let events = try Self.appendEvents(db, decision.events, of: rollout)
        let superseded = try Self.supersedePendingEffects(db, of: rollout, previous: previous, now: now)
        try Self.settle(db, reported, .reported, message: nil, now: now, onlyFrom: .failed)
        let effects = try Self.addEffects(db, decision.effects, of: rollout, now: now)
        for sample in samples {
            try insertSample(db, rollout: rollout.id, sample)
        }
        try Self.keepPoolRoles(db, of: rollout, previous: previous, now: now)
        publishAfterCommit(db, events)
        return RecordedDecision(
            previous: previous, rollout: rollout, generation: generation + 1, events: events, effects: effects,
            supersededEffects: superseded
        )
    }

    /// Writes the rollout's new state and generation (and its observation time, when given).
    private static func writeState(
        _ db: Database, _ rollout: Rollout, previous: Rollout?, generation: Int64, observedAt: Timestamp?
    ) throws {
        let content = try StoreJSON.encode(rollout)
        if let previous, previous.phase == rollout.phase {
            // A tick that leaves the phase (and so `active`) as it was: SQLite rewrites the entries of the indexes
            // on `phase` and `active` for every UPDATE that sets them, even to the same value.
            try db.cachedStatement(
                sql: """
                    UPDATE rollouts SET generation = ?, updated_at = ?, content = ?,
                        observed_at = COALESCE(?, observed_at)
                    WHERE id = ?
                    """
            ).execute(
                arguments: [
                    generation, rollout.updatedAt.millisecondsSinceEpoch, content,
                    observedAt?.millisecondsSinceEpoch, rollout.id,
                ]
            )
        } else {
            try db.cachedStatement(
                sql: """
                    UPDATE rollouts SET phase = ?, active = ?, generation = ?, updated_at = ?, content = ?,
                        observed_at = COALESCE(?, observed_at)
                    WHERE id = ?
                    """
            ).execute(
                arguments: [
                    rollout.phase.rawValue, rollout.phase.isTerminal ? 0 : 1, generation,
                    rollout.updatedAt.millisecondsSinceEpoch, content, observedAt?.millisecondsSinceEpoch, rollout.id,
                ]
            )
        }
    }

    /// Appends the decision's events to the log; returns them with the `seq` each was given.
    private static func appendEvents(_ db: Database, _ decided: [Event], of rollout: Rollout) throws -> [Event] {
        let key = rollout.strategy
        var events: [Event] = []
        for var event in decided {
            guard event.rollout == rollout.id, event.strategy == key else {
                throw StoreError(.invalidDecision, "an event of \(event.rollout) in a decision of \(rollout.id)")
            }
            event.seq = 0
            try db.cachedStatement(
                sql: "INSERT INTO events (time, rollout, namespace, name, type, content) VALUES (?, ?, ?, ?, ?, ?)"
            ).execute(
                arguments: [
                    event.time.millisecondsSinceEpoch, event.rollout, key.namespace, key.name, event.type.rawValue,
                    try StoreJSON.encode(event),
                ]
            )
            event.seq = db.lastInsertedRowID
            events.append(event)
        }
        return events
    }

    /// When the decision starts a rollback: the rollout's pending effects, marked superseded (they must not run
    /// after the rollback's). Returns their ids.
    private static func supersedePendingEffects(
        _ db: Database, of rollout: Rollout, previous: Rollout?, now: Timestamp
    ) throws -> [Int64] {
        guard rollout.phase.isRollingBack && !(previous?.phase.isRollingBack ?? false) else { return [] }
        let superseded = try Int64.fetchAll(
            try db.cachedStatement(sql: "SELECT id FROM effects WHERE rollout = ? AND status = 'pending' ORDER BY id"),
            arguments: [rollout.id]
        )
        try settle(db, superseded, .superseded, message: "superseded by the rollback", now: now)
        return superseded
    }

    /// Adds the decision's effects, pending, in order.
    private static func addEffects(_ db: Database, _ decided: [Effect], of rollout: Rollout, now: Timestamp) throws
        -> [StoredEffect]
    {
        var effects: [StoredEffect] = []
        for effect in decided {
            try db.cachedStatement(
                sql: "INSERT INTO effects (rollout, status, content, created_at) VALUES (?, 'pending', ?, ?)"
            ).execute(
                arguments: [rollout.id, try StoreJSON.encode(effect), now.millisecondsSinceEpoch]
            )
            effects.append(
                StoredEffect(
                    id: db.lastInsertedRowID, rollout: rollout.id, effect: effect, status: .pending, createdAt: now
                )
            )
        }
        return effects
    }

    /// `decide` swaps the rollout's pools when the new version becomes stable; the next rollout starts there.
    private static func keepPoolRoles(_ db: Database, of rollout: Rollout, previous: Rollout?, now: Timestamp) throws {
        guard rollout.phase == .succeeded, previous?.phase != .succeeded, let pools = rollout.pools else { return }
        let key = rollout.strategy
        try db.cachedStatement(
            sql: """
                INSERT INTO pool_roles (namespace, name, content, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (namespace, name) DO UPDATE SET content = excluded.content,
                    updated_at = excluded.updated_at
                """
        ).execute(
            arguments: [key.namespace, key.name, try StoreJSON.encode(pools), now.millisecondsSinceEpoch]
        )
    }

    /// Publishes `events` from the writer's queue right after commit, so subscribers see them in `seq` order. Only
    /// when there are events: GRDB drops every cached statement that deletes rows (here the samples' trim) when a
    /// transaction observer comes or goes, and preparing that one again cost more than the rest of a tick's store
    /// work.
    private func publishAfterCommit(_ db: Database, _ events: [Event]) {
        guard !events.isEmpty else { return }
        let broadcaster = self.broadcaster
        db.afterNextTransaction { _ in broadcaster.publish(events) }
    }

    static func rolloutRecord(_ db: Database, _ id: String) throws -> RolloutRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM rollouts WHERE id = ?"), arguments: [id]).map(
            decodeRollout)
    }

    static func decodeRollout(_ row: Row) throws -> RolloutRecord {
        let id: String = row["id"]
        return RolloutRecord(
            rollout: try StoreJSON.decode(Rollout.self, row["content"], what: "rollout \(id)"),
            generation: row["generation"],
            observedAt: (row["observed_at"] as Int64?).map(Timestamp.init(millisecondsSinceEpoch:))
        )
    }

    /// `r-YYYYMMDD-NNNN`, numbered per UTC day in creation order.
    static func nextRolloutID(_ db: Database, now: Timestamp) throws -> String {
        let day = String(now.rfc3339.prefix(10)).replacingOccurrences(of: "-", with: "")
        let prefix = "r-\(day)-"
        // A range of the primary key (`.` sorts right after `-`), so the count walks the index, not the table.
        let count =
            try Int.fetchOne(
                try db.cachedStatement(sql: "SELECT COUNT(*) FROM rollouts WHERE id > ? AND id < ?"),
                arguments: [prefix, "r-\(day)."]
            ) ?? 0
        let number = String(count + 1)
        return prefix + String(repeating: "0", count: max(0, 4 - number.count)) + number
    }

    /// The recorded roles when they still name the strategy's pools; else the strategy's own roles.
    static func poolRoles(_ db: Database, _ strategy: Strategy) throws -> Pools? {
        guard case .upstreams(let stable, let canary, _) = strategy.target else { return nil }
        let declared = Pools(stable: stable, canary: canary)
        guard
            let text = try String.fetchOne(
                try db.cachedStatement(sql: "SELECT content FROM pool_roles WHERE namespace = ? AND name = ?"),
                arguments: [strategy.namespace, strategy.name]
            )
        else { return declared }
        let recorded = try StoreJSON.decode(Pools.self, text, what: "pool roles of \(strategy.key)")
        let same = Set(recorded.stable + recorded.canary) == Set(stable + canary)
        return same ? recorded : declared
    }
}
