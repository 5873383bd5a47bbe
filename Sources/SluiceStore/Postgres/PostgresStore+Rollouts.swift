import PostgresNIO
import SluiceCore

extension PostgresStore: RolloutStore {
    /// Starts a rollout of the strategy's latest revision in one transaction (see `Store.startRollout`): refuses
    /// when the strategy has an active rollout, assigns the id (`r-YYYYMMDD-NNNN`), resolves the pool roles, and
    /// records the decision `build` returns.
    public func startRollout(
        strategy key: StrategyKey, now: Timestamp,
        _ build: @escaping @Sendable (_ id: String, _ strategy: StoredStrategy, _ pools: Pools?) throws -> Decision
    ) async throws -> RecordedDecision {
        try await startRollout(strategy: key, now: now, queued: nil, build)
    }

    /// `startRollout`, marking the queued command `queued` (when given) applied in the same transaction.
    func startRollout(
        strategy key: StrategyKey, now: Timestamp, queued: Int64?,
        _ build: @escaping @Sendable (_ id: String, _ strategy: StoredStrategy, _ pools: Pools?) throws -> Decision
    ) async throws -> RecordedDecision {
        let recorded = try await write("start a rollout of \(key)") { connection in
            // The strategy's lock (one start at a time per strategy), then the one that numbers ids per day.
            try await Self.lockStrategyAndRolloutIDs(connection, key, logger: logger)
            try await self.fence(connection, key, what: "start a rollout of \(key)")
            if let queued { try await self.takeCommand(connection, queued) }
            guard let stored = try await Self.latestStrategy(connection, key, logger: logger) else {
                throw StoreError(.notFound, "strategy \(key) does not exist")
            }
            if let active = try await Self.activeRolloutID(connection, key, logger: logger) {
                throw StoreError(.activeRollout, "strategy \(key) already has an active rollout \(active)")
            }
            let id = try await Self.nextRolloutID(connection, now: now, logger: logger)
            let decision = try build(id, stored, try await Self.poolRoles(connection, stored.strategy, logger: logger))
            guard decision.rollout.id == id, decision.rollout.strategy == key else {
                throw StoreError(.invalidDecision, "the start decision is for \(decision.rollout.id), not \(id)")
            }
            try await connection.run(
                """
                INSERT INTO rollouts (id, namespace, name, phase, active, generation, created_at, updated_at, content)
                VALUES (\(id), \(key.namespace), \(key.name), 'Pending', TRUE, 0, \(now.millisecondsSinceEpoch),
                    \(now.millisecondsSinceEpoch), '{}')
                """, logger: logger)
            let recorded = try await self.apply(
                connection, decision, previous: nil, generation: 0, samples: [], reported: [], now: now)
            if let queued { try await self.finishCommand(connection, queued, .applied(recorded.rollout), now: now) }
            return recorded
        }
        broadcaster.publish(recorded.events)
        return recorded
    }

    /// The advisory lock key that numbers rollout ids (any constant no other code uses).
    static let rolloutIDLock: Int64 = 0x736C_7569_6365_0002

    /// Records the decision `decide` makes from the rollout's current state, in one transaction (see
    /// `RolloutStore.record`). The rollout's row is locked (`FOR UPDATE`) and its generation compared with
    /// `tick.basedOn`'s in that transaction: a decision recorded meanwhile, by this replica or another, makes it
    /// `staleState`.
    public func record(
        _ tick: TickRecord, _ decide: @escaping @Sendable (Rollout, StoredStrategy) throws -> Decision?
    ) async throws -> RecordedDecision? {
        try await record(tick, queued: nil, decide)
    }

    /// `record`, marking the queued command `queued` (when given) applied in the same transaction.
    func record(
        _ tick: TickRecord, queued: Int64?, _ decide: @escaping @Sendable (Rollout, StoredStrategy) throws -> Decision?
    ) async throws -> RecordedDecision? {
        let rolloutID = tick.rolloutID
        let recorded = try await write("record a decision of \(rolloutID)") { connection -> RecordedDecision? in
            guard
                let row = try await connection.row(
                    "SELECT * FROM rollouts WHERE id = \(rolloutID) FOR UPDATE", logger: logger)
            else { throw StoreError(.notFound, "rollout \(rolloutID) does not exist") }
            try await self.fence(
                connection,
                StrategyKey(namespace: try row.get("namespace", String.self), name: try row.get("name", String.self)),
                what: "record a decision of \(rolloutID)")
            if let queued { try await self.takeCommand(connection, queued) }
            let current: RolloutRecord
            if let read = tick.basedOn, read.rollout.id == rolloutID {
                guard try row.get("generation", Int64.self) == read.generation else {
                    throw StoreError(.staleState, "rollout \(rolloutID) changed since it was read")
                }
                current = read
            } else {
                current = try Self.decodeRollout(row)
            }
            let key = current.rollout.strategy
            let revision = current.rollout.strategyRevision
            let stored: StoredStrategy
            if let known = tick.strategy, known.key == key, known.revision == revision {
                stored = known  // revisions are immutable: the caller's copy is the stored one
            } else {
                guard
                    let found = try await Self.strategyRevision(connection, key, revision: revision, logger: logger)
                else { throw StoreError(.notFound, "strategy \(key) revision \(revision) is missing") }
                stored = found
            }
            guard let decision = try decide(current.rollout, stored) else { return nil }
            guard decision.rollout.id == rolloutID else {
                throw StoreError(.invalidDecision, "a decision for \(decision.rollout.id) recorded as \(rolloutID)")
            }
            let recorded = try await self.apply(
                connection, decision, previous: current.rollout, generation: current.generation,
                samples: tick.samples, reported: tick.reportedFailures, observedAt: tick.observedAt, now: tick.now)
            if let queued { try await self.finishCommand(connection, queued, .applied(recorded.rollout), now: tick.now) }
            return recorded
        }
        if let recorded { broadcaster.publish(recorded.events) }
        return recorded
    }

    /// One rollout with its generation, or nil.
    public func rolloutRecord(_ id: String) async throws -> RolloutRecord? {
        try await read("read rollout \(id)") { connection in
            try await connection.row("SELECT * FROM rollouts WHERE id = \(id)", logger: logger).map(Self.decodeRollout)
        }
    }

    /// One rollout with its generation (nil when there is none) and its effects in `status`, oldest first, from one
    /// snapshot. With `known`, the stored rollout is decoded only when its generation moved since.
    public func rolloutRecord(_ id: String, effects status: EffectStatus, known: RolloutRecord?) async throws
        -> (record: RolloutRecord?, effects: [StoredEffect])
    {
        try await read("read rollout \(id) and its \(status.rawValue) effects") { connection in
            guard let row = try await connection.row("SELECT * FROM rollouts WHERE id = \(id)", logger: logger) else {
                return (nil, [])
            }
            let record: RolloutRecord
            if let known, known.rollout.id == id, try row.get("generation", Int64.self) == known.generation {
                // Every decision bumps the generation, so the same generation is the same stored rollout.
                let observedAt = try row.get("observed_at", Int64?.self).map(Timestamp.init(millisecondsSinceEpoch:))
                record = RolloutRecord(rollout: known.rollout, generation: known.generation, observedAt: observedAt)
            } else {
                record = try Self.decodeRollout(row)
            }
            return (record, try await Self.effects(connection, rollout: id, status: status, logger: logger))
        }
    }

    /// One page of rollouts, newest first (creation time, then id), optionally of one strategy and/or in some
    /// phases: at most `limit`, all listed after the rollout `cursor` names (nil: from the newest). A cursor that
    /// names no rollout is `notFound`.
    public func rollouts(
        after cursor: String?, strategy: StrategyKey?, phases: Set<Phase>?, limit: Int
    ) async throws -> [Rollout] {
        precondition(limit > 0, "a page holds at least one rollout")
        return try await read("list rollouts") { connection in
            var page = SQLBuilder("SELECT * FROM rollouts WHERE TRUE")
            if let cursor {
                guard
                    let row = try await connection.row(
                        "SELECT created_at FROM rollouts WHERE id = \(cursor)", logger: logger)
                else { throw StoreError(.notFound, "rollout \(cursor) (the page cursor) does not exist") }
                page.append(" AND (created_at, id) < (?, ?)", try row.get("created_at", Int64.self), cursor)
            }
            if let strategy {
                page.append(" AND namespace = ? AND name = ?", strategy.namespace, strategy.name)
            }
            if let phases {
                page.append(" AND phase = ANY(?)", phases.map(\.rawValue).sorted())
            }
            page.append(" ORDER BY created_at DESC, id DESC LIMIT ?", limit)
            return try await connection.rows(page.query, logger: logger).map { try Self.decodeRollout($0).rollout }
        }
    }

    /// Every rollout not in a terminal phase, oldest first: what the controller drives.
    public func activeRollouts() async throws -> [Rollout] {
        try await read("list active rollouts") { connection in
            try await connection.rows("SELECT * FROM rollouts WHERE active ORDER BY created_at, id", logger: logger)
                .map { try Self.decodeRollout($0).rollout }
        }
    }

    /// The active rollout of a strategy, or nil.
    public func activeRollout(of key: StrategyKey) async throws -> Rollout? {
        try await read("read the active rollout of \(key)") { connection in
            try await connection.row(
                "SELECT * FROM rollouts WHERE namespace = \(key.namespace) AND name = \(key.name) AND active",
                logger: logger
            ).map { try Self.decodeRollout($0).rollout }
        }
    }

    /// The pools in their current roles for a strategy's next rollout (nil for `deployment` targets).
    public func poolRoles(_ key: StrategyKey) async throws -> Pools? {
        try await read("read the pool roles of \(key)") { connection in
            guard let stored = try await Self.latestStrategy(connection, key, logger: logger) else { return nil }
            return try await Self.poolRoles(connection, stored.strategy, logger: logger)
        }
    }

    /// How many rollouts the store holds in each phase; a phase without rollouts is absent.
    public func rolloutCountsByPhase() async throws -> [Phase: Int] {
        try await read("count rollouts by phase") { connection in
            var counts: [Phase: Int] = [:]
            for row in try await connection.rows(
                "SELECT phase, COUNT(*) AS count FROM rollouts GROUP BY phase", logger: logger)
            {
                let text = try row.get("phase", String.self)
                guard let phase = Phase(rawValue: text) else {
                    throw StoreError(.corruptData, "rollouts are stored in an unknown phase \"\(text)\"")
                }
                counts[phase] = try row.get("count", Int.self)
            }
            return counts
        }
    }

    /// The newest rollout of each strategy that has one (by creation time, then id), ordered by strategy key.
    public func newestRolloutPerStrategy() async throws -> [Rollout] {
        try await read("read the newest rollout of each strategy") { connection in
            try await connection.rows(
                """
                SELECT DISTINCT ON (namespace, name) * FROM rollouts
                ORDER BY namespace, name, created_at DESC, id DESC
                """, logger: logger
            ).map { try Self.decodeRollout($0).rollout }
        }
    }

    // MARK: - Inside a transaction

    /// Writes a decision: the rollout's new state, effects, samples and pool roles, then its events last, so the
    /// event counter's lock is held only from there to the commit.
    func apply(
        _ connection: PostgresConnection, _ decision: Decision, previous: Rollout?, generation: Int64,
        samples: [Sample], reported: [Int64], observedAt: Timestamp? = nil, now: Timestamp
    ) async throws -> RecordedDecision {
        let rollout = decision.rollout
        let key = rollout.strategy
        for event in decision.events where event.rollout != rollout.id || event.strategy != key {
            throw StoreError(.invalidDecision, "an event of \(event.rollout) in a decision of \(rollout.id)")
        }
        // The generation is compared again where it is written: the row is locked, so this only fails on a bug.
        let updated = try await connection.row(
            """
            UPDATE rollouts SET phase = \(rollout.phase.rawValue), active = \(!rollout.phase.isTerminal),
                generation = generation + 1, updated_at = \(rollout.updatedAt.millisecondsSinceEpoch),
                content = \(try StoreJSON.encode(rollout)),
                observed_at = COALESCE(\(observedAt?.millisecondsSinceEpoch), observed_at)
            WHERE id = \(rollout.id) AND generation = \(generation)
            RETURNING generation
            """, logger: logger)
        guard let newGeneration = try updated?.get("generation", Int64.self) else {
            throw StoreError(.staleState, "rollout \(rollout.id) changed since it was read")
        }
        var superseded: [Int64] = []
        if rollout.phase.isRollingBack && !(previous?.phase.isRollingBack ?? false) {
            superseded = try await connection.rows(
                "SELECT id FROM effects WHERE rollout = \(rollout.id) AND status = 'pending' ORDER BY id",
                logger: logger
            ).map { try $0.get("id", Int64.self) }
            try await Self.settle(
                connection, superseded, .superseded, message: "superseded by the rollback", now: now, logger: logger)
        }
        try await Self.settle(
            connection, reported, .reported, message: nil, now: now, onlyFrom: .failed, logger: logger)
        var effects: [StoredEffect] = []
        for effect in decision.effects {
            let row = try await connection.row(
                """
                INSERT INTO effects (rollout, status, content, created_at)
                VALUES (\(rollout.id), 'pending', \(try StoreJSON.encode(effect)), \(now.millisecondsSinceEpoch))
                RETURNING id
                """, logger: logger)
            guard let id = try row?.get("id", Int64.self) else {
                throw StoreError(.database, "effect of \(rollout.id) stored without an id")
            }
            effects.append(StoredEffect(id: id, rollout: rollout.id, effect: effect, status: .pending, createdAt: now))
        }
        for sample in samples {
            try await insertSample(connection, rollout: rollout.id, sample)
        }
        // `decide` swaps the rollout's pools when the new version becomes stable; the next rollout starts there.
        if rollout.phase == .succeeded, previous?.phase != .succeeded, let pools = rollout.pools {
            try await connection.run(
                """
                INSERT INTO pool_roles (namespace, name, content, updated_at)
                VALUES (\(key.namespace), \(key.name), \(try StoreJSON.encode(pools)), \(now.millisecondsSinceEpoch))
                ON CONFLICT (namespace, name) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at
                """, logger: logger)
        }
        let events = try await appendEvents(connection, decision.events)
        return RecordedDecision(
            previous: previous, rollout: rollout, generation: newGeneration, events: events, effects: effects,
            supersededEffects: superseded)
    }

    /// Appends `events` with the next `seq`s from the counter row, in one statement. Updating that row locks it until
    /// this transaction ends, so a concurrent append waits there: appends commit one after another in `seq` order,
    /// and a reader that sees seq N sees every seq below it. Only the commit follows, so the lock is held one round
    /// trip. Nothing is taken when there are no events.
    ///
    /// The same statement notifies `eventsChannel` with the events' strategy (empty when they are of several):
    /// PostgreSQL delivers it at the commit, in commit order, to every replica listening, whose readers then read
    /// the log by `seq` (docs/ha.md "Live streams").
    func appendEvents(_ connection: PostgresConnection, _ events: [Event]) async throws -> [Event] {
        guard !events.isEmpty else { return [] }
        let strategies = Set(events.map(\.strategy))
        let notice = strategies.count == 1 ? strategies.first!.description : ""
        let contents = try events.map { event in
            var unnumbered = event
            unnumbered.seq = 0
            return try StoreJSON.encode(unnumbered)
        }
        let seqs = try await connection.rows(
            """
            WITH next AS (UPDATE event_seq SET last = last + \(events.count) RETURNING last),
            appended AS (
                INSERT INTO events (seq, time, rollout, namespace, name, type, content)
                SELECT next.last - \(events.count) + e.position, e.time, e.rollout, e.namespace, e.name, e.type,
                    e.content
                FROM next, UNNEST(
                    \(events.map(\.time.millisecondsSinceEpoch))::BIGINT[], \(events.map(\.rollout))::TEXT[],
                    \(events.map(\.strategy.namespace))::TEXT[], \(events.map(\.strategy.name))::TEXT[],
                    \(events.map(\.type.rawValue))::TEXT[], \(contents)::TEXT[]
                ) WITH ORDINALITY AS e(time, rollout, namespace, name, type, content, position)
                RETURNING seq
            )
            SELECT seq FROM appended, (SELECT pg_notify(\(Self.eventsChannel), \(notice))) AS notified
            """, logger: logger
        ).map { try $0.get("seq", Int64.self) }.sorted()
        guard seqs.count == events.count else {
            throw StoreError(.corruptData, "the event counter row is missing")
        }
        return zip(events, seqs).map { event, seq in
            var numbered = event
            numbered.seq = seq
            return numbered
        }
    }

    static func activeRolloutID(_ connection: PostgresConnection, _ key: StrategyKey, logger: Logger) async throws
        -> String?
    {
        try await connection.row(
            "SELECT id FROM rollouts WHERE namespace = \(key.namespace) AND name = \(key.name) AND active",
            logger: logger
        )?.get("id", String.self)
    }

    static func decodeRollout(_ row: PostgresRandomAccessRow) throws -> RolloutRecord {
        let id = try row.get("id", String.self)
        return RolloutRecord(
            rollout: try StoreJSON.decode(Rollout.self, try row.get("content", String.self), what: "rollout \(id)"),
            generation: try row.get("generation", Int64.self),
            observedAt: try row.get("observed_at", Int64?.self).map(Timestamp.init(millisecondsSinceEpoch:)))
    }

    /// `r-YYYYMMDD-NNNN`, numbered per UTC day in creation order.
    static func nextRolloutID(_ connection: PostgresConnection, now: Timestamp, logger: Logger) async throws
        -> String
    {
        let day = String(now.rfc3339.prefix(10)).replacingOccurrences(of: "-", with: "")
        let prefix = "r-\(day)-"
        // A range of the primary key ("C" collation: `.` sorts right after `-`).
        let count = try await connection.row(
            "SELECT COUNT(*) AS count FROM rollouts WHERE id > \(prefix) AND id < \("r-\(day).")", logger: logger
        )?.get("count", Int.self) ?? 0
        let number = String(count + 1)
        return prefix + String(repeating: "0", count: max(0, 4 - number.count)) + number
    }

    /// The recorded roles when they still name the strategy's pools; else the strategy's own roles.
    static func poolRoles(_ connection: PostgresConnection, _ strategy: Strategy, logger: Logger) async throws
        -> Pools?
    {
        guard case .upstreams(let stable, let canary, _) = strategy.target else { return nil }
        let declared = Pools(stable: stable, canary: canary)
        guard
            let text = try await connection.row(
                "SELECT content FROM pool_roles WHERE namespace = \(strategy.namespace) AND name = \(strategy.name)",
                logger: logger
            )?.get("content", String.self)
        else { return declared }
        let recorded = try StoreJSON.decode(Pools.self, text, what: "pool roles of \(strategy.key)")
        let same = Set(recorded.stable + recorded.canary) == Set(stable + canary)
        return same ? recorded : declared
    }
}
