import SluiceCore

/// Sluice's durable state, as the controller and the API use it: strategies and their revisions, rollouts,
/// the append-only event log, recent samples, effects, pool roles and delivery cursors. `Store` (SQLite) is
/// one backend; a second one conforms to this and passes the same tests (Tests/SluiceStoreTests, `StoreBackend`).
///
/// What every backend guarantees (docs/architecture.md "The store"):
/// - A decision (`startRollout`, `record`) is one transaction: the new state, its events, effects and samples
///   are all committed or none is; a rollout's `generation` goes up by one with each.
/// - `record` is fenced: with `TickRecord.basedOn`, it refuses with `staleState` and writes nothing when another
///   decision of the rollout was recorded since that read.
/// - Events are append-only (never updated or deleted, refused by the database itself) and numbered by `seq`,
///   strictly increasing and gap-free as readers see them: no reader sees seq N+1 before N is committed, so a
///   reader that has seen N and asks for what comes after it never misses one.
/// - Events reach `eventStream` and `nextEvents` only after their transaction committed, in `seq` order.
public protocol RolloutStore: Sendable {
    // MARK: Decisions

    /// Starts a rollout of the strategy's latest revision in one transaction: refuses with `activeRollout` when
    /// the strategy has an active rollout (`notFound` when it does not exist), assigns the id (`r-YYYYMMDD-NNNN`),
    /// resolves the pool roles, and records the decision `build` returns (typically `Rollout.start`).
    func startRollout(
        strategy key: StrategyKey, now: Timestamp,
        _ build: @escaping @Sendable (_ id: String, _ strategy: StoredStrategy, _ pools: Pools?) throws -> Decision
    ) async throws -> RecordedDecision

    /// Records the decision `decide` makes from the rollout's current state and its strategy revision, in one
    /// transaction: the new state, its events (assigned their `seq`), its effects (pending), `tick.samples`, and
    /// `tick.reportedFailures` marked reported. Returns nil, writing nothing, when `decide` returns nil. Refuses
    /// with `staleState` when `tick.basedOn` is older than the stored rollout, `notFound` when there is no rollout.
    func record(
        _ tick: TickRecord, _ decide: @escaping @Sendable (Rollout, StoredStrategy) throws -> Decision?
    ) async throws -> RecordedDecision?

    // MARK: Rollouts

    /// One rollout with its generation, or nil.
    func rolloutRecord(_ id: String) async throws -> RolloutRecord?

    /// One rollout with its generation (nil when there is none) and its effects in `status`, oldest first, from
    /// one snapshot: what a controller tick reads. With `known` (the record the caller last saw), the stored
    /// rollout is decoded only when its generation moved since.
    func rolloutRecord(_ id: String, effects status: EffectStatus, known: RolloutRecord?) async throws
        -> (record: RolloutRecord?, effects: [StoredEffect])

    /// One page of rollouts, newest first (creation time, then id), optionally of one strategy and/or in some
    /// phases: at most `limit`, all listed after the rollout `cursor` names (nil: from the newest). A keyset page,
    /// so a listing walks every rollout once however many are added meanwhile; a cursor naming no rollout is
    /// `notFound`.
    func rollouts(after cursor: String?, strategy: StrategyKey?, phases: Set<Phase>?, limit: Int)
        async throws
        -> [Rollout]

    /// Every rollout not in a terminal phase, oldest first: what the controller drives.
    func activeRollouts() async throws -> [Rollout]

    /// The active rollout of a strategy, or nil.
    func activeRollout(of key: StrategyKey) async throws -> Rollout?

    /// The pools in their current roles for a strategy's next rollout (nil for `deployment` targets).
    func poolRoles(_ key: StrategyKey) async throws -> Pools?

    /// How many rollouts the store holds in each phase; a phase without rollouts is absent.
    func rolloutCountsByPhase() async throws -> [Phase: Int]

    /// The newest rollout of each strategy that has one (by creation time, then id), ordered by strategy key.
    func newestRolloutPerStrategy() async throws -> [Rollout]

    // MARK: Events

    /// Events in `seq` order, filtered by `query`.
    func events(_ query: EventQuery) async throws -> [Event]

    /// Where a listing of `query` starts (the `after` to list from) when it should hold only the events from
    /// `since` on and, of those, only the newest `tail`; never before `query.after`.
    func eventStart(_ query: EventQuery, since: Timestamp?, tail: Int?) async throws -> Int64

    /// The highest `seq` in the log (0 when it is empty).
    func lastSeq() async throws -> Int64

    /// The events matching `query` already in the log, then each new one as soon as its transaction commits, in
    /// `seq` order, with no gap and no duplicate. Ends when the consumer stops iterating (or early, with the
    /// store's failure to read).
    func eventStream(_ query: EventQuery) -> AsyncStream<Event>

    /// The first page of events matching `query`, waiting for a commit while there is none: how a sink follows
    /// the log at its own pace. Throws `CancellationError` when the task is cancelled while waiting.
    func nextEvents(_ query: EventQuery) async throws -> [Event]

    // MARK: Strategies

    /// Stores `strategy` as a new revision when its canonical content differs from the latest one.
    func putStrategy(_ strategy: Strategy, source: String?, now: Timestamp) async throws
        -> (stored: StoredStrategy, outcome: ApplyOutcome)

    /// Deletes strategy `key` (its rollouts, revisions and events stay); refused with `activeRollout` while a
    /// rollout of it is active, `notFound` when it does not exist. Returns what was deleted.
    func deleteStrategy(_ key: StrategyKey, now: Timestamp) async throws -> StoredStrategy

    /// The latest revision of a strategy that is not deleted, or nil.
    func strategy(_ key: StrategyKey) async throws -> StoredStrategy?

    /// One revision of a strategy (what a rollout runs, deleted or not), or nil.
    func strategy(_ key: StrategyKey, revision: Int) async throws -> StoredStrategy?

    /// The latest revision of every strategy that is not deleted, ordered by namespace and name.
    func strategies() async throws -> [StoredStrategy]

    // MARK: Effects and samples

    /// Effects of a rollout in one status (all when nil), oldest first.
    func effects(rollout: String, status: EffectStatus?) async throws -> [StoredEffect]

    /// Ids of rollouts, in any phase, that have effects still pending (to replay after a restart).
    func rolloutsWithPendingEffects() async throws -> [String]

    /// Marks a pending effect confirmed (carried out). A no-op when it is no longer pending.
    func confirmEffect(_ id: Int64, now: Timestamp) async throws

    /// Marks a pending effect failed with `message`, and every later pending effect of the same rollout
    /// abandoned. A no-op when it is no longer pending.
    func failEffect(_ id: Int64, message: String, now: Timestamp) async throws

    /// The most recent samples of one check of a rollout, oldest first (a bounded ring per rollout and check).
    func samples(rollout: String, check: String) async throws -> [Sample]

    /// Drops the samples of every rollout that finished (is in a terminal phase) before `cutoff`, by its last
    /// update; events, effects and the rollouts themselves stay. In short transactions, so decisions recorded
    /// meanwhile wait little. Returns how many samples were dropped.
    func pruneSamples(ofRolloutsFinishedBefore cutoff: Timestamp) async throws -> Int

    // MARK: Deliveries

    /// The `seq` of the last event `sink` is done with (delivered or given up), nil when it has none yet.
    func deliveryCursor(sink: String) async throws -> Int64?

    /// Records that `sink` is done with every event up to `seq`. A cursor never moves back.
    func advanceDeliveryCursor(sink: String, to seq: Int64) async throws

    /// Every sink that has a cursor, with it.
    func deliveryCursors() async throws -> [String: Int64]

    // MARK: Dashboard sessions

    /// Keeps a new session.
    func putSession(_ session: StoredSession) async throws

    /// The session whose cookie hashes to `digest`, expired or not.
    func session(digest: String) async throws -> StoredSession?

    /// Ends the session whose cookie hashes to `digest`.
    func deleteSession(digest: String) async throws

    /// Removes the sessions expired by `now`; returns how many.
    func pruneSessions(expiredBy now: Timestamp) async throws -> Int
}

/// What `RolloutStore.record` is told besides the decision: which rollout, what the caller read, and what its
/// tick observed. A command is a `TickRecord` of a rollout id and a time only.
public struct TickRecord: Sendable {
    public var rolloutID: String
    /// The record the caller read and decides from: the store compares its generation (refusing a stale one with
    /// `staleState`) instead of decoding the stored rollout again. Nil: the store reads the rollout itself.
    public var basedOn: RolloutRecord?
    /// The strategy revision the rollout runs, as the caller holds it (revisions are immutable, so the store need
    /// not read it again when it matches the rollout's).
    public var strategy: StoredStrategy?
    /// The samples the tick took, kept in each check's ring.
    public var samples: [Sample]
    /// Failed effects the decision was told about: marked reported.
    public var reportedFailures: [Int64]
    /// When the tick observed the rollout (nil for a command): the rollout's observation time.
    public var observedAt: Timestamp?
    /// When the decision is recorded.
    public var now: Timestamp

    public init(
        rolloutID: String, basedOn: RolloutRecord? = nil, strategy: StoredStrategy? = nil, samples: [Sample] = [],
        reportedFailures: [Int64] = [], observedAt: Timestamp? = nil, now: Timestamp
    ) {
        self.rolloutID = rolloutID
        self.basedOn = basedOn
        self.strategy = strategy
        self.samples = samples
        self.reportedFailures = reportedFailures
        self.observedAt = observedAt
        self.now = now
    }
}

// The forms callers use most, with the defaults a protocol requirement cannot carry.
extension RolloutStore {
    /// One rollout, or nil.
    public func rollout(_ id: String) async throws -> Rollout? {
        try await rolloutRecord(id)?.rollout
    }

    /// One rollout with its generation and its effects in `status`, from one snapshot.
    public func rolloutRecord(_ id: String, effects status: EffectStatus) async throws
        -> (record: RolloutRecord?, effects: [StoredEffect])
    {
        try await rolloutRecord(id, effects: status, known: nil)
    }

    /// Rollouts, newest first, optionally of one strategy and/or in some phases: the first page of
    /// `rollouts(after:strategy:phases:limit:)`.
    public func rollouts(strategy: StrategyKey? = nil, phases: Set<Phase>? = nil, limit: Int = 1000) async throws
        -> [Rollout]
    {
        try await rollouts(after: nil, strategy: strategy, phases: phases, limit: limit)
    }

    /// Every event in `seq` order (the first 1,000).
    public func events() async throws -> [Event] {
        try await events(EventQuery())
    }

    /// Every event: the backlog, then live ones.
    public func eventStream() -> AsyncStream<Event> {
        eventStream(EventQuery())
    }

    /// Stores `strategy`, applied as a value (no source text).
    public func putStrategy(_ strategy: Strategy, now: Timestamp) async throws
        -> (stored: StoredStrategy, outcome: ApplyOutcome)
    {
        try await putStrategy(strategy, source: nil, now: now)
    }

    /// Every effect of a rollout, oldest first.
    public func effects(rollout: String) async throws -> [StoredEffect] {
        try await effects(rollout: rollout, status: nil)
    }
}
