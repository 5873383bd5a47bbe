import Logging
import SluiceCore
import SluiceHTTP
import SluiceStore
import Tracing

/// The runtime of Sluice: drives every active rollout at its analysis interval, concurrently, through
/// observe → decide (pure) → record (one transaction) → act → confirm; takes commands (which preempt a
/// rollout's in-flight observation, and whose rollback effects run at once); delivers committed events to
/// webhooks at least once. `run()` is the long-running service; the other methods are what the HTTP API calls.
public final class Controller: Sendable {
    /// Tunables; the defaults suit production.
    public struct Options: Sendable {
        /// Bound on one observation call (a metric query, a weight read-back, a readiness check).
        public var observeTimeout: Duration = .seconds(15)
        /// Bound on one effect (a weight change, a deployment, a promotion that waits for pods).
        public var effectTimeout: Duration = .seconds(300)
        /// How long `startRollout(supersede: true)` waits for the superseded rollout to finish rolling back.
        /// Below the CLI's 15 s request timeout, so that the client gets the answer (a 409 saying why).
        public var supersedeTimeout: Duration = .seconds(10)
        /// Pause before retrying a driver step that failed on the store (it is retried until it works).
        public var storeRetryDelay: Duration = .milliseconds(500)
        /// Webhook delivery attempts per event and target (the first included).
        public var notificationAttempts = 3
        /// Pause before the second delivery attempt; it doubles for each further one.
        public var notificationBackoff: Duration = .milliseconds(500)
        /// Bound on one webhook request.
        public var notificationTimeout: Duration = .seconds(5)
        /// Ticks that observe and record at once; the rest wait their turn in the order they fell due. When the
        /// controller falls behind (a stall, a busy machine), the backlog is then a queue of small waiting tasks,
        /// not thousands of half-done ticks each holding its requests and memory, and the HTTP queue in front of
        /// a router stays short, so a rollback's weight change is not stuck behind it. Commands never wait here.
        public var maxConcurrentTicks = 256
        /// How long a replica that does not drive a rollout waits for the one that does to carry out a command it
        /// queued; past it the command is withdrawn and the caller gets a 503 (docs/ha.md). Below the CLI's 15 s
        /// request timeout, so that the caller gets that answer.
        public var forwardTimeout: Duration = .seconds(10)
        /// How often such a replica reads the command's outcome again when no notice came (a notice lost while its
        /// listener reconnected).
        public var forwardPoll: Duration = .seconds(1)

        public init() {}
    }

    let store: any RolloutStore
    let providers: any ProviderFactory
    let clock: any SluiceClock
    let logger: Logger
    let options: Options
    let notifier: Notifier
    /// Starts a span per tick and per effect batch, continuing the trace of the rollout's last command; nil: no
    /// spans, no trace context on outbound calls, nothing extra per tick.
    let tracer: (any Tracer)?
    /// Admits ticks, `options.maxConcurrentTicks` at a time.
    let tickGate: AdmissionGate
    let drivers = Locked<[String: RolloutDriver]>([:])
    let counters = Locked(ControllerSnapshot())
    /// The per-tick histograms `/metrics` writes out.
    public let histograms = TickHistograms()
    /// Drivers created before `run()` started or while it runs; `run()` takes them from here.
    let newDrivers: AsyncStream<RolloutDriver>
    let newDriversContinuation: AsyncStream<RolloutDriver>.Continuation
    /// The shards this replica drives when several share the store (nil: it drives every rollout, as with SQLite).
    let ownership: ShardOwnership?
    /// Where commands for rollouts this replica does not drive are queued for the replica that does (nil: one
    /// replica, which carries out every command itself).
    let commands: (any CommandQueue)?
    /// Queued commands to take now, from the queue's notices and the lease work.
    let sweeps: AsyncStream<CommandSweep>
    let sweepsContinuation: AsyncStream<CommandSweep>.Continuation
    /// Queued commands being carried out here now, so that a notice and a sweep do not take one twice.
    let takingCommands = Locked<Set<Int64>>([])

    /// A controller over `store`. `http` delivers webhooks (nil: notifications are not sent, and say so
    /// in the log); `logger` gets `rollout.id`, `strategy.name` and `stage.index` metadata; `tracer` (nil: none)
    /// traces ticks and effects, and the request id and trace of a command's context are stored with what it records.
    /// With `ownership` (replicas sharing a PostgreSQL store) it drives only the rollouts of the shards it leases, and
    /// with `commands` it queues the commands of other rollouts for their owner and carries out those queued for its own.
    public init(
        store: any RolloutStore, providers: any ProviderFactory, clock: any SluiceClock = SystemClock(),
        http: (any HTTPClient)?, logger: Logger, options: Options = Options(), tracer: (any Tracer)? = nil,
        ownership: ShardOwnership? = nil, commands: (any CommandQueue)? = nil
    ) {
        self.tracer = tracer
        self.store = store
        self.ownership = ownership
        self.commands = ownership == nil ? nil : commands
        (sweeps, sweepsContinuation) = AsyncStream<CommandSweep>.makeStream()
        self.providers = providers
        self.clock = clock
        self.logger = logger
        self.options = options
        (newDrivers, newDriversContinuation) = AsyncStream<RolloutDriver>.makeStream()
        tickGate = AdmissionGate(limit: max(1, options.maxConcurrentTicks))
        notifier = Notifier(
            store: store, http: http, options: options, logger: logger,
            sendsFor: { key in ownership?.mayAct(on: Shards.of(key)) ?? true })
        notifier.counters = counters
    }

    /// Counters and values for metrics and readiness.
    public func snapshot() -> ControllerSnapshot {
        var snapshot = counters.current
        snapshot.drivenRollouts = drivers.withLock { $0.count }
        snapshot.ownershipProblem = ownership?.problem
        snapshot.shardsOwned = ownership?.view.shards.count
        snapshot.shardsUnowned = ownership?.unowned.current
        return snapshot
    }

    /// Whether this replica drives the rollouts of strategy `key`: it holds their shard's lease and its own deadline
    /// has not passed. Always true without ownership (one replica). A command for a rollout this replica does not own
    /// must not run here (the store would refuse its write as `fenced`); the owner carries it out.
    public func owns(_ key: StrategyKey) -> Bool {
        mayAct(on: Shards.of(key))
    }

    /// Whether this replica does what one replica does for all (the Kubernetes Event mirror): the holder of shard 0's
    /// lease, while its own deadline has not passed. Always true with one replica.
    public var leads: Bool { mayAct(on: 0) }

    /// `owns` by shard: what a driver checks before each effect.
    func mayAct(on shard: Int) -> Bool {
        ownership?.mayAct(on: shard) ?? true
    }

    /// Committed events matching `query`: the backlog, then live ones, in `seq` order.
    public func events(_ query: EventQuery = EventQuery()) -> AsyncStream<Event> {
        store.eventStream(query)
    }

    /// Starts a rollout of `version` with the strategy's latest revision. With `supersede`, an active
    /// rollout of the strategy is rolled back first (and this waits until it has finished); without it,
    /// an active rollout is a `conflict`.
    /// On a replica that does not drive the strategy's rollouts (several replicas), the start is queued for the one
    /// that does and this answers with what it made of it (`forward`).
    public func startRollout(strategy key: StrategyKey, version: String, actor: String, supersede: Bool) async throws
        -> Rollout
    {
        let request = QueuedCommand.Request.start(version: version, actor: actor, supersede: supersede)
        if let commands, !owns(key) { return try await forward(request, strategy: key, to: commands) }
        do {
            return try await start(
                strategy: key, version: version, actor: actor, supersede: supersede,
                provenance: Provenance.current(tracer), carrying: nil)
        } catch is NotOwner {
            guard let commands else { throw ControllerError(.unavailable, "this replica no longer drives \(key)") }
            return try await forward(request, strategy: key, to: commands)
        }
    }

    /// `startRollout` here, as the owner: the start is recorded with `provenance`, and with `carrying`, the queued
    /// command it carries out is marked applied in the same transaction.
    func start(
        strategy key: StrategyKey, version: String, actor: String, supersede: Bool, provenance: Provenance,
        carrying queued: Int64?
    ) async throws -> Rollout {
        let active = supersede ? try await mapStoreErrors({ try await self.store.activeRollout(of: key) }) : nil
        if let active { try await supersedeAndWait(active, version: version, actor: actor, provenance: provenance) }
        let superseded = active?.id
        let now = clock.now()
        let build: @Sendable (String, StoredStrategy, Pools?) throws -> Decision = { id, stored, pools in
            let decision = Rollout.start(
                id: id, strategy: stored.strategy, revision: stored.revision, version: version, actor: actor,
                pools: pools, supersedes: superseded, now: now)
            if let rejection = decision.rejection { throw ControllerError(.invalid, rejection) }
            return provenance.stamp(decision)
        }
        let recorded = try await mapStoreErrorsNotingFence {
            if let queued, let commands = self.commands {
                return try await commands.startRollout(strategy: key, now: now, carrying: queued, build)
            }
            return try await self.store.startRollout(strategy: key, now: now, build)
        }
        let driver = driver(for: recorded.rollout.id, strategy: key)
        await driver.committed(recorded, preempting: false)
        return recorded.rollout
    }

    /// Applies a human's command to a rollout: recorded at once (an in-flight observation of the rollout
    /// is cancelled and dropped), effects started at once. Refusals are `conflict` with `decide`'s reason.
    /// On a replica that does not drive the rollout (several replicas), the command is queued for the one that does
    /// and this answers with what it made of it (`forward`).
    public func command(rolloutID: String, _ command: Command) async throws -> Rollout {
        guard let commands else {
            return try await apply(command, to: rolloutID, provenance: Provenance.current(tracer), carrying: nil)
        }
        guard let rollout = try await mapStoreErrors({ try await self.store.rollout(rolloutID) }) else {
            throw ControllerError(.notFound, "rollout \(rolloutID) does not exist")
        }
        let request = QueuedCommand.Request.command(rolloutID: rolloutID, command)
        if !owns(rollout.strategy) { return try await forward(request, strategy: rollout.strategy, to: commands) }
        do {
            return try await apply(command, to: rolloutID, provenance: Provenance.current(tracer), carrying: nil)
        } catch is NotOwner {
            return try await forward(request, strategy: rollout.strategy, to: commands)
        }
    }

    /// `command` here, as the owner: recorded with `provenance`, and with `carrying`, the queued command it carries
    /// out is marked applied in the same transaction.
    func apply(_ command: Command, to rolloutID: String, provenance: Provenance, carrying queued: Int64?) async throws
        -> Rollout
    {
        let driver = drivers.withLock { $0[rolloutID] }
        await driver?.preemptObservation()
        let now = clock.now()
        let tick = TickRecord(rolloutID: rolloutID, now: now)
        let decideCommand: @Sendable (Rollout, StoredStrategy) throws -> Decision? = { rollout, stored in
            let decision = decide(rollout, strategy: stored.strategy, input: .command(command), now: now)
            if let rejection = decision.rejection { throw ControllerError(.conflict, rejection) }
            return provenance.stamp(decision)
        }
        let recorded: RecordedDecision?
        do {
            recorded = try await mapStoreErrorsNotingFence {
                if let queued, let commands = self.commands {
                    return try await commands.record(tick, carrying: queued, decideCommand)
                }
                return try await self.store.record(tick, decideCommand)
            }
        } catch let error as ControllerError where error.code == .conflict {
            counters.withLock { $0.commandsRejected += 1 }
            throw error
        }
        guard let recorded else { throw ControllerError(.notFound, "rollout \(rolloutID) does not exist") }
        let target = driver ?? self.driver(for: rolloutID, strategy: recorded.rollout.strategy)
        await target.committed(recorded, preempting: recorded.rollout.phase.isRollingBack)
        return recorded.rollout
    }

    /// Rolls `active` back for a new rollout of `version` and waits (at most `supersedeTimeout`, kept below a
    /// client's request timeout) until it is final. A rollback the router does not confirm is a `conflict` at once,
    /// with the reason: an effect of it failed, or the rollout was already RollingBack and the router has not
    /// confirmed weight 0 since. The rollback goes on (it is retried every tick); no new rollout is started.
    private func supersedeAndWait(_ active: Rollout, version: String, actor: String, provenance: Provenance)
        async throws
    {
        let after = try await mapStoreErrors { try await self.store.lastSeq() }
        if active.phase == .rollingBack {
            if let stuck = Self.unconfirmedRollback(active) { throw stuck }
        } else {
            let rollout = try await apply(
                .supersede(actor: actor, by: "a new rollout of \(version)"), to: active.id, provenance: provenance,
                carrying: nil)
            if rollout.phase.isTerminal { return }
        }
        let store = self.store
        let id = active.id
        enum Outcome: Sendable {
            case final
            case failing(String)
        }
        let outcome = try? await withTimeout(options.supersedeTimeout, on: clock, "the rollback of \(id)") {
            for await event in store.eventStream(EventQuery(after: after, rollout: id)) {
                if event.type == .rolledBack || event.type == .failed { return Outcome.final }
                if event.type == .effectFailed { return Outcome.failing(event.message) }
            }
            return Outcome.failing("the event stream ended")
        }
        switch outcome {
        case .final: return
        case .failing(let failure):
            throw ControllerError(
                .conflict,
                "rollout \(id) is rolling back but the router has not confirmed traffic on stable: \(failure); "
                    + "no new rollout was started; Sluice keeps retrying, start the new rollout once \(id) is "
                    + "RolledBack (sluice status \(active.strategy))")
        case .none:
            let current = try? await store.rollout(id)
            throw Self.unconfirmedRollback(current ?? active)
                ?? ControllerError(
                    .conflict,
                    "rollout \(id) is still rolling back after \(options.supersedeTimeout); no new rollout was "
                        + "started; start it once \(id) is RolledBack")
        }
    }

    /// Why a RollingBack rollout is not confirmed on stable, when its last tick says so: its effects failed (the
    /// router refuses writes or is down) and the router has not read back weight 0.
    static func unconfirmedRollback(_ rollout: Rollout) -> ControllerError? {
        guard rollout.phase == .rollingBack, let router = rollout.router, let failure = router.failure else {
            return nil
        }
        let why = "the router last read back \(router.weight.map { "\($0)%" } ?? "nothing") for the canary ("
            + failure + ")"

        return ControllerError(
            .conflict,
            "rollout \(rollout.id) is rolling back and the router has not confirmed traffic on stable: \(why); no new "
                + "rollout was started; Sluice keeps retrying, start the new rollout once \(rollout.id) is RolledBack")
    }

    /// The driver of `rolloutID` (a rollout of `key`), created (and handed to `run()`) when there is none yet or the
    /// one there stopped (its shard was lost, and is held again).
    func driver(for rolloutID: String, strategy key: StrategyKey) -> RolloutDriver {
        let (driver, created) = drivers.withLock { drivers -> (RolloutDriver, Bool) in
            if let driver = drivers[rolloutID], !driver.isStopped { return (driver, false) }
            let driver = RolloutDriver(id: rolloutID, shard: Shards.of(key), controller: self)
            drivers[rolloutID] = driver
            return (driver, true)
        }
        if created { newDriversContinuation.yield(driver) }
        return driver
    }

    /// Stops the drivers of the rollouts in `shards` (their leases were lost or given back) and waits until they
    /// have: none of them records or acts afterwards. Their unconfirmed effects stay pending for the next owner.
    func stopDrivers(inShards shards: Set<Int>) async {
        let stopping = drivers.withLock { drivers in
            let stopping = drivers.values.filter { shards.contains($0.shard) }
            for driver in stopping { drivers[driver.id] = nil }
            return stopping
        }
        await withDiscardingTaskGroup { group in
            for driver in stopping { group.addTask { await driver.stop() } }
        }
        if !stopping.isEmpty {
            logger.info("stopped driving the rollouts of lost shards", metadata: ["rollouts": "\(stopping.count)"])
        }
    }

    /// Forgets a driver whose rollout is final and has nothing left to run.
    func retire(_ driver: RolloutDriver) {
        drivers.withLock { drivers in
            if drivers[driver.id] === driver { drivers[driver.id] = nil }
        }
    }

    func mapStoreErrors<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            throw ControllerError(error)
        }
    }

    /// `mapStoreErrors`, except that a write refused as `fenced` (nothing was written: another replica drives the
    /// rollout now) is `NotOwner` when commands can be queued for that replica.
    func mapStoreErrorsNotingFence<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError where error.code == .fenced && commands != nil {
            throw NotOwner(reason: error.message)
        } catch let error as StoreError {
            throw ControllerError(error)
        }
    }
}
