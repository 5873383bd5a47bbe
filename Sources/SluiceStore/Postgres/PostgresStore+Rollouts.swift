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
        let what = "start a rollout of \(key)"
        let lease = try heldLease(of: key, what: what)
        let recorded = try await write(what) { connection in
            try await self.lockForStart(connection, key, lease: lease, what: what)
            if let queued { try await self.takeCommand(connection, queued) }
            let found = try await Self.readForStart(connection, key, now: now, logger: logger)
            guard let stored = found.strategy else {
                throw StoreError(.notFound, "strategy \(key) does not exist")
            }
            if let active = found.active {
                throw StoreError(.activeRollout, "strategy \(key) already has an active rollout \(active)")
            }
            let id = found.nextID
            let decision = try build(id, stored, found.pools)
            guard decision.rollout.id == id, decision.rollout.strategy == key else {
                throw StoreError(.invalidDecision, "the start decision is for \(decision.rollout.id), not \(id)")
            }
            try Self.checkEvents(of: decision)
            // The row as it is once the decision is written (generation 1), not a placeholder then an UPDATE.
            let rollout = decision.rollout
            try await connection.run(
                """
                INSERT INTO rollouts (id, namespace, name, phase, active, generation, created_at, updated_at, content)
                VALUES (\(id), \(key.namespace), \(key.name), \(rollout.phase.rawValue), \(!rollout.phase.isTerminal),
                    1, \(now.millisecondsSinceEpoch), \(rollout.updatedAt.millisecondsSinceEpoch),
                    \(try StoreJSON.encode(rollout)))
                """, logger: logger)
            let recorded = try await self.applyBeyondTheRow(
                connection, decision, previous: nil, generation: 1, samples: [], reported: [], now: now)
            if let queued { try await self.finishCommand(connection, queued, .applied(recorded.rollout), now: now) }
            return recorded
        }
        broadcaster.publish(recorded.events)
        return recorded
    }

    /// A start's locks in one statement: the strategy's (one start at a time per strategy), the one that numbers ids
    /// per day, then the shard's lease `FOR SHARE` as `fence` takes it (refused, `fenced`, when it moved on).
    private func lockForStart(_ connection: PostgresConnection, _ key: StrategyKey, lease: HeldLease?, what: String)
        async throws
    {
        let row = try await connection.row(
            """
            WITH fence AS (
                SELECT epoch FROM shard_leases
                WHERE shard = \(Int64(lease?.shard ?? -1)) AND holder = \(lease?.replica ?? "")
                    AND epoch = \(lease?.epoch ?? -1)
                FOR SHARE
            )
            SELECT pg_advisory_xact_lock(hashtextextended(\(key.namespace + "/" + key.name), 0)) AS strategy_lock,
                pg_advisory_xact_lock(\(Self.rolloutIDLock)) AS id_lock,
                \(lease == nil) OR EXISTS (SELECT 1 FROM fence) AS held
            """, logger: logger)
        if let lease, try !(row?.get("held", Bool.self) ?? false) { throw leaseMoved(lease, key, what: what) }
    }

    /// What a start reads, in one statement: the strategy's latest revision (nil when there is none or it is
    /// deleted), its active rollout's id, the next rollout id of the day and the pools in their roles.
    private static func readForStart(
        _ connection: PostgresConnection, _ key: StrategyKey, now: Timestamp, logger: Logger
    ) async throws -> (strategy: StoredStrategy?, active: String?, nextID: String, pools: Pools?) {
        let day = rolloutIDs(on: now)
        guard
            let row = try await connection.row(
                """
                SELECT s.*,
                    s.revision IS NOT NULL AND NOT EXISTS (
                        SELECT 1 FROM strategy_deletions d
                        WHERE d.namespace = s.namespace AND d.name = s.name AND d.revision = s.revision
                    ) AS live,
                    (SELECT id FROM rollouts WHERE namespace = \(key.namespace) AND name = \(key.name) AND active)
                        AS active_id,
                    (SELECT COUNT(*) FROM rollouts WHERE id > \(day.prefix) AND id < \(day.end)) AS today,
                    (SELECT content FROM pool_roles WHERE namespace = \(key.namespace) AND name = \(key.name))
                        AS pool_roles
                FROM (SELECT 1) AS one
                LEFT JOIN LATERAL (
                    SELECT * FROM strategy_revisions WHERE namespace = \(key.namespace) AND name = \(key.name)
                    ORDER BY revision DESC LIMIT 1
                ) AS s ON TRUE
                """, logger: logger)
        else { throw StoreError(.database, "reading strategy \(key) for a start returned nothing") }
        let nextID = rolloutID(day, number: try row.get("today", Int.self) + 1)
        guard try row.get("live", Bool.self) else { return (nil, nil, nextID, nil) }
        let stored = try decodeStrategy(row)
        let pools = try poolRoles(stored.strategy, recorded: try row.get("pool_roles", String?.self))
        return (stored, try row.get("active_id", String?.self), nextID, pools)
    }

    /// The advisory lock key that numbers rollout ids (any constant no other code uses).
    static let rolloutIDLock: Int64 = 0x736C_7569_6365_0002

    /// Records the decision `decide` makes from the rollout's current state, in one transaction (see
    /// `RolloutStore.record`). The rollout's row is locked (`FOR UPDATE`) and its generation compared with
    /// `tick.basedOn`'s in that transaction: a decision recorded meanwhile, by this replica or another, makes it
    /// `staleState`. A controller's tick (its read and strategy given) is one statement instead (`recordTick`).
    public func record(
        _ tick: TickRecord, _ decide: @escaping @Sendable (Rollout, StoredStrategy) throws -> Decision?
    ) async throws -> RecordedDecision? {
        try await record(tick, queued: nil, decide)
    }

    /// `record`, marking the queued command `queued` (when given) applied in the same transaction.
    func record(
        _ tick: TickRecord, queued: Int64?, _ decide: @escaping @Sendable (Rollout, StoredStrategy) throws -> Decision?
    ) async throws -> RecordedDecision? {
        if queued == nil, let read = tick.basedOn, read.rollout.id == tick.rolloutID, let known = tick.strategy,
            known.key == read.rollout.strategy, known.revision == read.rollout.strategyRevision
        {
            return try await recordTick(tick, from: read, strategy: known, decide)
        }
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
        try await single("read rollout \(id)") { connection in
            try await connection.row("SELECT * FROM rollouts WHERE id = \(id)", logger: logger).map(Self.decodeRollout)
        }
    }

    /// One rollout with its generation (nil when there is none) and its effects in `status`, oldest first, from one
    /// snapshot. With `known`, the stored rollout is decoded only when its generation moved since.
    ///
    /// One statement (what a tick reads): the rollout joined with its effects in `status`, a row per effect (one row
    /// when it has none), its content sent only when its generation moved past `known`'s.
    public func rolloutRecord(_ id: String, effects status: EffectStatus, known: RolloutRecord?) async throws
        -> (record: RolloutRecord?, effects: [StoredEffect])
    {
        // Every decision bumps the generation, so the same generation is the same stored rollout.
        let knownGeneration = known.flatMap { $0.rollout.id == id ? $0.generation : nil }
        return try await single("read rollout \(id) and its \(status.rawValue) effects") { connection in
            let rows = try await connection.rows(
                TickReadStatement(id: id, knownGeneration: knownGeneration, status: status.rawValue), logger: logger)
            guard let first = rows.first else { return (nil, []) }
            let generation = try first.get("generation", Int64.self)
            let observedAt = try first.get("observed_at", Int64?.self).map(Timestamp.init(millisecondsSinceEpoch:))
            let rollout: Rollout
            if let content = try first.get("content", String?.self) {
                rollout = try StoreJSON.decode(Rollout.self, content, what: "rollout \(id)")
            } else if let known {
                rollout = known.rollout
            } else {
                throw StoreError(.corruptData, "rollout \(id) is stored without its content")
            }
            let effects = try rows.filter { try $0.get("effect_id", Int64?.self) != nil }.map {
                try Self.decodeEffect($0, prefix: "effect_")
            }
            return (RolloutRecord(rollout: rollout, generation: generation, observedAt: observedAt), effects)
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
        try await single("list active rollouts") { connection in
            try await connection.rows("SELECT * FROM rollouts WHERE active ORDER BY created_at, id", logger: logger)
                .map { try Self.decodeRollout($0).rollout }
        }
    }

    /// The active rollout of a strategy, or nil.
    public func activeRollout(of key: StrategyKey) async throws -> Rollout? {
        try await single("read the active rollout of \(key)") { connection in
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
        try await single("count rollouts by phase") { connection in
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
        try await single("read the newest rollout of each strategy") { connection in
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
        try Self.checkEvents(of: decision)
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
        return try await applyBeyondTheRow(
            connection, decision, previous: previous, generation: newGeneration, samples: samples, reported: reported,
            now: now)
    }

    /// What a decision writes besides the rollout's row (written already, at `generation`): superseded and reported
    /// effects, new effects, samples and pool roles, then its events last, so the event counter's lock is held only
    /// from there to the commit.
    func applyBeyondTheRow(
        _ connection: PostgresConnection, _ decision: Decision, previous: Rollout?, generation: Int64,
        samples: [Sample], reported: [Int64], now: Timestamp
    ) async throws -> RecordedDecision {
        let rollout = decision.rollout
        let key = rollout.strategy
        var superseded: [Int64] = []
        if Self.startsRollingBack(rollout, previous: previous) {
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
        if Self.swapsPools(rollout, previous: previous), let pools = rollout.pools {
            try await connection.run(
                """
                INSERT INTO pool_roles (namespace, name, content, updated_at)
                VALUES (\(key.namespace), \(key.name), \(try StoreJSON.encode(pools)), \(now.millisecondsSinceEpoch))
                ON CONFLICT (namespace, name) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at
                """, logger: logger)
        }
        let events = try await appendEvents(connection, decision.events)
        return RecordedDecision(
            previous: previous, rollout: rollout, generation: generation, events: events, effects: effects,
            supersededEffects: superseded)
    }

    /// Refuses a decision with an event of another rollout or strategy.
    static func checkEvents(of decision: Decision) throws {
        let rollout = decision.rollout
        for event in decision.events where event.rollout != rollout.id || event.strategy != rollout.strategy {
            throw StoreError(.invalidDecision, "an event of \(event.rollout) in a decision of \(rollout.id)")
        }
    }

    /// Whether `rollout` starts rolling back with this decision: its pending effects are superseded.
    static func startsRollingBack(_ rollout: Rollout, previous: Rollout?) -> Bool {
        rollout.phase.isRollingBack && !(previous?.phase.isRollingBack ?? false)
    }

    /// Whether `rollout` succeeds with this decision, so its pools' swapped roles are kept for the next rollout.
    static func swapsPools(_ rollout: Rollout, previous: Rollout?) -> Bool {
        rollout.phase == .succeeded && previous?.phase != .succeeded && rollout.pools != nil
    }

    // MARK: - A tick

    /// `record` of a controller's tick, which read the rollout (`tick.basedOn`) and holds its strategy revision:
    /// `decide` runs on those before anything is sent (the store would decide from the same two), and the database
    /// compares the generation read, as the transactional path does. A decision that writes only the rollout and its
    /// samples, nearly every tick's, is then one statement with no transaction around it (`writeTick`: the lease
    /// fence, the generation check, the new state, the samples and their rings' trim); one that also appends events,
    /// adds or settles effects or swaps pool roles runs that statement and the rest in one transaction. A stale epoch
    /// or generation writes nothing either way (docs/ha.md "Round trips").
    private func recordTick(
        _ tick: TickRecord, from read: RolloutRecord, strategy: StoredStrategy,
        _ decide: @escaping @Sendable (Rollout, StoredStrategy) throws -> Decision?
    ) async throws -> RecordedDecision? {
        let rolloutID = tick.rolloutID
        let what = "record a decision of \(rolloutID)"
        let lease = try heldLease(of: read.rollout.strategy, what: what)
        guard let decision = try decide(read.rollout, strategy) else {
            // Nothing to write, but refused all the same when the rollout or its lease moved on.
            try await single(what) { connection in
                try await self.checkTick(connection, read, lease: lease, what: what)
            }
            return nil
        }
        guard decision.rollout.id == rolloutID else {
            throw StoreError(.invalidDecision, "a decision for \(decision.rollout.id) recorded as \(rolloutID)")
        }
        try Self.checkEvents(of: decision)
        let previous = read.rollout
        // The statement trims each check's ring for one new sample; more of one check (no tick takes them) are
        // added one by one after it.
        let checks = tick.samples.map(\.check)
        let oneEach = Set(checks).count == checks.count
        let inStatement = oneEach ? tick.samples : []
        let after = oneEach ? [] : tick.samples
        let alone =
            decision.events.isEmpty && decision.effects.isEmpty && tick.reportedFailures.isEmpty && after.isEmpty
            && !Self.startsRollingBack(decision.rollout, previous: previous)
            && !Self.swapsPools(decision.rollout, previous: previous)
        let recorded: RecordedDecision
        if alone {
            // With the ticks of other rollouts that reach the store meanwhile, in one statement.
            let write = try tickWrite(decision.rollout, read: read, lease: lease, samples: inStatement,
                observedAt: tick.observedAt)
            let outcome = try await tickBatcher.write(write) { try await self.sendTicks($0) }
            let generation = try written(outcome, decision.rollout, lease: lease, what: what)
            recorded = RecordedDecision(
                previous: previous, rollout: decision.rollout, generation: generation, events: [], effects: [],
                supersededEffects: [])
        } else {
            recorded = try await write(what) { connection in
                let generation = try await self.writeTick(
                    connection, decision.rollout, read: read, lease: lease, samples: inStatement,
                    observedAt: tick.observedAt, what: what)
                return try await self.applyBeyondTheRow(
                    connection, decision, previous: previous, generation: generation, samples: after,
                    reported: tick.reportedFailures, now: tick.now)
            }
        }
        broadcaster.publish(recorded.events)
        return recorded
    }

    /// A tick's write in a transaction (`recordTick` of a decision that writes more than the rollout's row): the
    /// one-tick statement (`writeTicks` of one, `TickWriteStatement`). Returns the new generation; throws `notFound`,
    /// `fenced` or `staleState` (in that order, as `record`'s transactional path) having written nothing.
    private func writeTick(
        _ connection: PostgresConnection, _ rollout: Rollout, read: RolloutRecord, lease: HeldLease?,
        samples: [Sample], observedAt: Timestamp?, what: String
    ) async throws -> Int64 {
        let write = try tickWrite(rollout, read: read, lease: lease, samples: samples, observedAt: observedAt)
        guard let outcome = try await writeTicks(connection, [write]).first else {
            throw StoreError(.database, "cannot \(what): the tick's statement answered no row")
        }
        return try written(outcome, rollout, lease: lease, what: what)
    }

    /// What a tick writes: `rollout` over the generation `read` had, with `samples` (one per check), fenced by
    /// `lease`. The statement trims each check's ring, reading it as it was before the statement (one snapshot), so it
    /// keeps `samplesPerCheck - 1` of the old samples beside the new one.
    private func tickWrite(
        _ rollout: Rollout, read: RolloutRecord, lease: HeldLease?, samples: [Sample], observedAt: Timestamp?
    ) throws -> TickWrite {
        TickWrite(
            fence: FenceParameters(lease), phase: rollout.phase.rawValue, active: !rollout.phase.isTerminal,
            updatedAt: rollout.updatedAt.millisecondsSinceEpoch, content: try StoreJSON.encode(rollout),
            observedAt: observedAt?.millisecondsSinceEpoch, id: rollout.id, readGeneration: read.generation,
            checks: samples.map(\.check), times: samples.map(\.time.millisecondsSinceEpoch),
            contents: try samples.map { try StoreJSON.encode($0) })
    }

    /// The new generation of a tick's write, or its refusal: `notFound`, `fenced` or `staleState`.
    private func written(_ outcome: TickWriteOutcome, _ rollout: Rollout, lease: HeldLease?, what: String) throws
        -> Int64
    {
        switch outcome {
        case .written(let generation):
            return generation
        case .notFound:
            throw StoreError(.notFound, "rollout \(rollout.id) does not exist")
        case .fenced:
            guard let lease else { throw StoreError(.fenced, "cannot \(what): the write was fenced") }
            throw leaseMoved(lease, rollout.strategy, what: what)
        case .stale:
            throw StoreError(.staleState, "rollout \(rollout.id) changed since it was read")
        }
    }

    /// What `writeTick` refuses, for a tick whose decision writes nothing: `notFound`, `fenced` or `staleState`.
    private func checkTick(_ connection: PostgresConnection, _ read: RolloutRecord, lease: HeldLease?, what: String)
        async throws
    {
        let id = read.rollout.id
        let row = try await connection.rows(TickCheckStatement(fence: FenceParameters(lease), id: id), logger: logger)
            .first
        guard let row else { throw StoreError(.notFound, "rollout \(id) does not exist") }
        if let lease, try !row.get("held", Bool.self) { throw leaseMoved(lease, read.rollout.strategy, what: what) }
        guard try row.get("generation", Int64.self) == read.generation else {
            throw StoreError(.staleState, "rollout \(id) changed since it was read")
        }
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

    /// The ids of the rollouts of `now`'s UTC day lie between `prefix` and `end`, a range of the primary key ("C"
    /// collation: `.` sorts right after `-`).
    static func rolloutIDs(on now: Timestamp) -> (prefix: String, end: String) {
        let day = String(now.rfc3339.prefix(10)).replacingOccurrences(of: "-", with: "")
        return ("r-\(day)-", "r-\(day).")
    }

    /// `r-YYYYMMDD-NNNN`: the id of the day's rollout `number` (rollouts are numbered per UTC day in creation order).
    static func rolloutID(_ day: (prefix: String, end: String), number: Int) -> String {
        let digits = String(number)
        return day.prefix + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// The recorded roles when they still name the strategy's pools; else the strategy's own roles.
    static func poolRoles(_ connection: PostgresConnection, _ strategy: Strategy, logger: Logger) async throws
        -> Pools?
    {
        guard case .upstreams = strategy.target else { return nil }
        let recorded = try await connection.row(
            "SELECT content FROM pool_roles WHERE namespace = \(strategy.namespace) AND name = \(strategy.name)",
            logger: logger
        )?.get("content", String.self)
        return try poolRoles(strategy, recorded: recorded)
    }

    /// The pool roles `recorded` (pool_roles' JSON) when they still name the strategy's pools; else the strategy's own
    /// roles; nil for `deployment` targets.
    static func poolRoles(_ strategy: Strategy, recorded text: String?) throws -> Pools? {
        guard case .upstreams(let stable, let canary, _) = strategy.target else { return nil }
        let declared = Pools(stable: stable, canary: canary)
        guard let text else { return declared }
        let recorded = try StoreJSON.decode(Pools.self, text, what: "pool roles of \(strategy.key)")
        let same = Set(recorded.stable + recorded.canary) == Set(stable + canary)
        return same ? recorded : declared
    }
}
