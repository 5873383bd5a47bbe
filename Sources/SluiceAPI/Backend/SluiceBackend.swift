import SluiceController
import SluiceCore
import SluiceStore

/// What the API needs from the rest of Sluice: the store and the controller behind one seam.
///
/// `sluice serve` gives the API a `ControllerBackend` over the real store and controller; tests give
/// a fake. Implementations throw `APIError` for what a client did wrong (unknown rollout: 404; an active
/// rollout exists or the phase forbids the command: 409; an invalid strategy: 422).
public protocol SluiceBackend: Sendable {
    /// The store is open and the reconciler runs.
    func isReady() async -> Bool
    /// Why the server is not ready (what `/readyz` says with its 503), nil when it is: the whole reason, not only
    /// what `isReady` leaves unsaid.
    func unreadyReason() async -> String?

    /// Every applied strategy at its latest revision, ordered by key.
    func strategies() async throws -> [AppliedStrategy]
    /// One strategy, at `revision` or the latest; nil when unknown.
    func strategy(_ key: StrategyKey, revision: Int?) async throws -> AppliedStrategy?
    /// Validates `source` (YAML or JSON) as the one strategy `key` and stores it unless `dryRun`.
    func applyStrategy(_ key: StrategyKey, source: String, actor: String, dryRun: Bool) async throws -> ApplyResult
    /// Deletes strategy `key` (409 while a rollout of it is active, 404 when unknown); its rollouts and events stay.
    /// Returns the revision that was the latest.
    func deleteStrategy(_ key: StrategyKey, actor: String) async throws -> AppliedStrategy

    /// Starts a rollout of `key` to `version`; `supersede` rolls back an active one first.
    func startRollout(_ key: StrategyKey, version: String, actor: String, supersede: Bool) async throws -> Rollout
    /// Rollouts, newest first, optionally of one strategy and in one phase: at most `limit`, all listed
    /// after the rollout `after` names (nil: from the newest). An unknown `after` is a 404.
    func rollouts(strategy: StrategyKey?, phase: Phase?, after: String?, limit: Int) async throws -> [Rollout]
    /// One rollout; nil when unknown.
    func rollout(id: String) async throws -> Rollout?
    /// Counts by phase and the newest rollout of each strategy, for `/metrics`: read without listing rollouts.
    func rolloutSummary() async throws -> RolloutSummary
    /// Applies a human's command to a rollout; returns its state after the command was recorded.
    func command(rolloutID: String, _ command: Command) async throws -> Rollout
    /// The most recent samples of one check of a rollout, oldest first.
    func samples(rollout: String, check: String) async throws -> [Sample]

    /// Events with `seq > query.after`, oldest first, at most `query.limit`, optionally of one rollout, strategy
    /// or trace.
    func events(_ query: EventQuery) async throws -> [Event]
    /// The `after` to list `query` from so that a listing holds only the events from `since` on and, of those, only
    /// the newest `tail` (each optional), read from the newest end of the log.
    func eventStart(_ query: EventQuery, since: Timestamp?, tail: Int?) async throws -> Int64

    /// Counters and timings of the controller for `/metrics`.
    func runtimeMetrics() async -> RuntimeMetrics
}

/// A stored strategy revision.
public struct AppliedStrategy: Sendable, Hashable {
    public var strategy: Strategy
    public var revision: Int
    /// The applied document as it was sent (YAML or JSON).
    public var source: String?
    public var appliedAt: Timestamp
    public var appliedBy: String?

    public init(strategy: Strategy, revision: Int, source: String?, appliedAt: Timestamp, appliedBy: String? = nil) {
        self.strategy = strategy
        self.revision = revision
        self.source = source
        self.appliedAt = appliedAt
        self.appliedBy = appliedBy
    }
}

/// What `/metrics` shows of the stored rollouts.
public struct RolloutSummary: Sendable, Hashable {
    /// How many rollouts are in each phase; a phase without rollouts may be absent.
    public var countsByPhase: [Phase: Int]
    /// The newest rollout of each strategy that has one.
    public var newest: [Rollout]

    public init(countsByPhase: [Phase: Int], newest: [Rollout]) {
        self.countsByPhase = countsByPhase
        self.newest = newest
    }
}

/// The controller's own counters and timings, rendered by `/metrics`.
public struct RuntimeMetrics: Sendable {
    /// Durations and lateness of reconcile ticks, one observation of each per tick (the controller's own).
    public var histograms: TickHistograms
    /// Calls to metric providers and routers, by provider kind and outcome (`success`, `error`).
    public var providerRequests: [ProviderRequestKey: Int]
    /// Rollbacks started, by strategy and trigger (`automatic`, `manual`, `superseded`).
    public var rollbacks: [RollbackKey: Int]
    /// Store reads and writes that failed, retries included.
    public var storeErrors: Int
    /// Shards of rollouts this replica leases (nil with one replica, which owns every rollout).
    public var shardsOwned: Int?
    /// Shards no live replica leases, as this replica last read the table (0 with one replica).
    public var shardsUnowned = 0
    /// Webhook deliveries that the receiver took (2xx).
    public var webhooksDelivered = 0
    /// Webhook deliveries given up after their last attempt (the event is skipped for that webhook).
    public var webhooksFailed = 0

    public init(
        histograms: TickHistograms = TickHistograms(), providerRequests: [ProviderRequestKey: Int] = [:],
        rollbacks: [RollbackKey: Int] = [:], storeErrors: Int = 0
    ) {
        self.histograms = histograms
        self.providerRequests = providerRequests
        self.rollbacks = rollbacks
        self.storeErrors = storeErrors
    }

    /// The values of a counter sample's two labels: `provider` and `outcome` of
    /// `sluice_provider_requests_total`, `strategy` and `trigger` of `sluice_rollbacks_total`.
    public struct LabelPair: Sendable, Hashable, Comparable {
        public var first: String
        public var second: String

        public init(provider: String, outcome: String) { (first, second) = (provider, outcome) }
        public init(strategy: String, trigger: String) { (first, second) = (strategy, trigger) }

        public static func < (lhs: LabelPair, rhs: LabelPair) -> Bool { (lhs.first, lhs.second) < (rhs.first, rhs.second) }
    }

    /// `sluice_provider_requests_total` labels: `provider`, `outcome`.
    public typealias ProviderRequestKey = LabelPair
    /// `sluice_rollbacks_total` labels: `strategy`, `trigger`.
    public typealias RollbackKey = LabelPair
}

extension SluiceBackend {
    /// The reason of a backend that only knows whether it is ready.
    public func unreadyReason() async -> String? {
        await isReady() ? nil : "the store is not open or the reconciler is not running"
    }
}
