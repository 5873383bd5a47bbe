import Foundation
import Logging
import ServiceLifecycle
import SluiceController
import SluiceCore
import SluiceProviders
import SluiceStore

/// The API's backend in `sluice serve`: strategies and reads from the store, rollouts and commands
/// through the controller, every controller and store error mapped to the API's statuses.
public final class ControllerBackend: SluiceBackend, Service, Sendable {
    let store: any RolloutStore
    let controller: Controller
    let signal: EventSignal
    let providerMetrics: ProviderMetrics
    let routerMetrics: RouterMetrics
    let now: @Sendable () -> Timestamp
    let logger: Logger
    /// Strategy bodies are parsed here, off the cooperative pool (see `ParsingQueue`).
    private let parsing = ParsingQueue()
    private let state = Locked(State())

    private struct State {
        /// Rollbacks started, by strategy and trigger, counted from the event log.
        var rollbacks: [RuntimeMetrics.RollbackKey: Int] = [:]
        /// Whether the event log is followed now (readiness).
        var following = false
        /// Why the store's last probe failed, nil while it answers (readiness).
        var storeFailure: String?
    }

    /// How readiness asks the store whether it answers: every `interval`, waiting at most `timeout`. `/readyz` reads
    /// the last answer, never the store, so it stays cheap however often it is called and a database that hangs
    /// cannot hold it.
    public struct StoreProbe: Sendable {
        public var interval: Duration = .seconds(2)
        public var timeout: Duration = .seconds(2)

        public init() {}
    }

    let probe: StoreProbe

    public init(
        store: any RolloutStore, controller: Controller, signal: EventSignal, providerMetrics: ProviderMetrics,
        routerMetrics: RouterMetrics, logger: Logger, probe: StoreProbe = StoreProbe(),
        now: @escaping @Sendable () -> Timestamp = APIServer.systemNow
    ) {
        self.probe = probe
        self.store = store
        self.controller = controller
        self.signal = signal
        self.providerMetrics = providerMetrics
        self.routerMetrics = routerMetrics
        self.logger = logger
        self.now = now
    }

    /// Follows the committed events (waking SSE followers, counting rollbacks) and probes the store for readiness,
    /// until cancelled or a graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.followEvents() }
                group.addTask { await self.probeStore() }
            }
        }
    }

    /// Asks the store for its last `seq` every `probe.interval`, bounded by `probe.timeout`, and keeps the answer.
    private func probeStore() async {
        let store = self.store
        while !Task.isCancelled {
            let started = now()
            await withTaskGroup(of: String?.self) { group in
                group.addTask {
                    do {
                        _ = try await store.lastSeq()
                        return nil
                    } catch {
                        return "the store failed to answer: \(error)"
                    }
                }
                group.addTask {
                    try? await Task.sleep(for: self.probe.timeout)  // the probe's bound
                    return "the store did not answer within \(self.probe.timeout)"
                }
                // Kept as soon as the first child ends: a call that ignores cancellation must not delay the answer.
                guard let first = await group.next() else { return }
                group.cancelAll()
                if !Task.isCancelled { self.keep(probe: first, at: started) }
            }
            try? await Task.sleep(for: probe.interval)  // the probe's period
        }
    }

    private func keep(probe failure: String?, at time: Timestamp) {
        let before = state.withLock { state -> String? in
            defer {
                if state.storeFailure == nil || failure == nil {
                    state.storeFailure = failure.map { "\($0) (since \(time.rfc3339))" }
                }
            }
            return state.storeFailure
        }
        if before == nil, let failure {
            logger.warning("the store does not answer; not ready", metadata: ["error": "\(failure)"])
        } else if before != nil, failure == nil {
            logger.info("the store answers again; ready")
        }
    }

    private func followEvents() async {
        state.withLock { $0.following = true }
        defer { state.withLock { $0.following = false } }
        for await event in controller.events(EventQuery(after: 0)) {
            if event.type == .rollbackStarted {
                let key = RuntimeMetrics.RollbackKey(strategy: event.strategy.description, trigger: Self.trigger(event))
                state.withLock { $0.rollbacks[key, default: 0] += 1 }
            }
            signal.advance(to: event.seq)
        }
    }

    /// The `trigger` label of a `RollbackStarted` event: its reason is a `RollbackCause.Kind` (`decide` writes it),
    /// `unknown` for one the log holds that this version does not know.
    static func trigger(_ event: Event) -> String {
        event.reason.flatMap(RollbackCause.Kind.init(rawValue:))?.metricLabel ?? "unknown"
    }

    public func isReady() async -> Bool {
        await unreadyReason() == nil
    }

    public func unreadyReason() async -> String? {
        let (following, storeFailure) = state.withLock { ($0.following, $0.storeFailure) }
        if let storeFailure { return storeFailure }
        let snapshot = controller.snapshot()
        if let problem = snapshot.ownershipProblem { return problem }
        guard snapshot.running, following else {
            return "the store is not open or the reconciler is not running"
        }
        return nil
    }

    public func strategies() async throws -> [AppliedStrategy] {
        try await mapped { try await self.store.strategies().map(Self.applied) }
    }

    public func strategy(_ key: StrategyKey, revision: Int?) async throws -> AppliedStrategy? {
        try await mapped {
            if let revision { return try await self.store.strategy(key, revision: revision).map(Self.applied) }
            return try await self.store.strategy(key).map(Self.applied)
        }
    }

    static func applied(_ stored: StoredStrategy) -> AppliedStrategy {
        AppliedStrategy(strategy: stored.strategy, revision: stored.revision, source: stored.source, appliedAt: stored.appliedAt)
    }

    public func applyStrategy(_ key: StrategyKey, source: String, actor: String, dryRun: Bool) async throws -> ApplyResult {
        let strategy = try await parsing.run { try Self.validate(source, as: key) }
        return try await mapped {
            let previous = try await self.store.strategy(key)
            let diff = previous.map { TextDiff.unified(old: $0.strategy.canonicalJSON(), new: strategy.canonicalJSON()) }
            if dryRun {
                guard let previous else {
                    return ApplyResult(strategy: key.description, outcome: .created, revision: 1, dryRun: true)
                }
                let changed = previous.strategy.canonicalJSON() != strategy.canonicalJSON()
                return ApplyResult(
                    strategy: key.description, outcome: changed ? .configured : .unchanged,
                    revision: previous.revision + (changed ? 1 : 0), diff: changed ? diff : nil, dryRun: true)
            }
            let (stored, outcome) = try await self.store.putStrategy(strategy, source: source, now: self.now())
            self.logger.info(
                "strategy applied",
                metadata: ["strategy.name": "\(key)", "strategy.revision": "\(stored.revision)", "actor": "\(actor)"])
            switch outcome {
            case .created: return ApplyResult(strategy: key.description, outcome: .created, revision: stored.revision)
            case .unchanged: return ApplyResult(strategy: key.description, outcome: .unchanged, revision: stored.revision)
            case .configured:
                return ApplyResult(strategy: key.description, outcome: .configured, revision: stored.revision, diff: diff)
            }
        }
    }

    public func deleteStrategy(_ key: StrategyKey, actor: String) async throws -> AppliedStrategy {
        try await mapped {
            let deleted = try await self.store.deleteStrategy(key, now: self.now())
            self.logger.info(
                "strategy deleted",
                metadata: ["strategy.name": "\(key)", "strategy.revision": "\(deleted.revision)", "actor": "\(actor)"])
            return Self.applied(deleted)
        }
    }

    /// The one valid strategy of `source`, named as the URL names it; 422 with every error otherwise.
    public static func validate(_ source: String, as key: StrategyKey) throws -> Strategy {
        let located: (strategy: Strategy, position: SourcePosition)
        do {
            located = try StrategyLoader.loadOneLocated(yaml: source, file: key.description)
        } catch {
            throw APIError(
                .invalidStrategy, "\(error.errors.count) error\(error.errors.count == 1 ? "" : "s") in strategy \(key)",
                details: error.errors.map {
                    ErrorDetail(path: $0.path.isEmpty ? nil : $0.path, line: $0.line, column: $0.column, message: $0.message)
                })
        }
        let (strategy, position) = located
        guard strategy.key == key else {
            throw APIError(
                .invalidStrategy, "the document is strategy \(strategy.key) but the URL names \(key)",
                details: [ErrorDetail(path: "metadata", line: position.line, column: position.column,
                                      message: "metadata.namespace/name \(strategy.key) must match the URL's \(key)")])
        }
        return strategy
    }

    public func startRollout(_ key: StrategyKey, version: String, actor: String, supersede: Bool) async throws -> Rollout {
        try await mapped { try await self.controller.startRollout(strategy: key, version: version, actor: actor, supersede: supersede) }
    }

    public func rollouts(strategy: StrategyKey?, phase: Phase?, after: String?, limit: Int) async throws -> [Rollout] {
        try await mapped {
            try await self.store.rollouts(after: after, strategy: strategy, phases: phase.map { [$0] }, limit: limit)
        }
    }

    public func rollout(id: String) async throws -> Rollout? {
        try await mapped { try await self.store.rollout(id) }
    }

    public func rolloutSummary() async throws -> RolloutSummary {
        try await mapped {
            RolloutSummary(
                countsByPhase: try await self.store.rolloutCountsByPhase(),
                newest: try await self.store.newestRolloutPerStrategy())
        }
    }

    public func command(rolloutID: String, _ command: Command) async throws -> Rollout {
        try await mapped { try await self.controller.command(rolloutID: rolloutID, command) }
    }

    public func samples(rollout: String, check: String) async throws -> [Sample] {
        try await mapped { try await self.store.samples(rollout: rollout, check: check) }
    }

    public func events(_ query: EventQuery) async throws -> [Event] {
        try await mapped { try await self.store.events(query) }
    }

    public func eventStart(_ query: EventQuery, since: Timestamp?, tail: Int?) async throws -> Int64 {
        try await mapped { try await self.store.eventStart(query, since: since, tail: tail) }
    }

    public func runtimeMetrics() async -> RuntimeMetrics {
        var metrics = RuntimeMetrics(histograms: controller.histograms)
        let snapshot = controller.snapshot()
        metrics.storeErrors = snapshot.storeErrors
        metrics.shardsOwned = snapshot.shardsOwned
        metrics.shardsUnowned = snapshot.shardsUnowned ?? 0
        metrics.webhooksDelivered = snapshot.notificationsDelivered
        metrics.webhooksFailed = snapshot.notificationsFailed
        metrics.rollbacks = state.withLock { $0.rollbacks }
        for provider in providerMetrics.providers {
            for outcome in ProviderMetrics.Outcome.allCases {
                let count = providerMetrics.requests(provider: provider, outcome: outcome)
                if count > 0 { metrics.providerRequests[.init(provider: provider, outcome: outcome.rawValue)] = count }
            }
        }
        for (key, count) in routerMetrics.counts {
            metrics.providerRequests[.init(provider: key.router.rawValue, outcome: key.outcome.rawValue)] = count
        }
        return metrics
    }

    /// Controller and store errors as API errors (404, 409, 422, 503).
    func mapped<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ControllerError {
            switch error.code {
            case .notFound: throw APIError(.notFound, error.message)
            case .conflict: throw APIError(.conflict, error.message)
            case .invalid: throw APIError(.invalidStrategy, error.message)
            case .timeout, .unavailable: throw APIError(.unavailable, error.message)
            }
        } catch let error as StoreError {
            switch error.code {
            case .notFound: throw APIError(.notFound, error.message)
            case .activeRollout, .staleState: throw APIError(.conflict, error.message)
            case .corruptData, .invalidDecision, .database, .fenced: throw APIError(.unavailable, error.description)
            }
        }
    }
}
