import SluiceCore
import SluiceStore

/// What a rollout's driver does next, decided in pure code. Events come in (the driver started, a read came
/// back, it woke at T, it was admitted, a tick recorded, effects are done, a command arrived, the store failed);
/// actions go out (replay unconfirmed effects, read, sleep until, observe, run effects preempting, retry the store
/// after a backoff, retire). `RolloutDriver` carries the actions out and reports what happened: this type never
/// touches the store, a provider, a task or a clock, so the cadence is tested as tables of values
/// (DriverScheduleTests), like `decide`.
struct DriverSchedule: Sendable, Equatable {
    /// Something the driver is to do.
    enum Action: Sendable, Equatable {
        /// Run the effects a previous run left unconfirmed (oldest first, not preempting) and wait for them; then
        /// report `effectsDone`.
        case replayEffects
        /// Read the rollout from the store; report `read`.
        case readRollout
        /// Read the strategy revision the rollout runs (once: it never changes during a rollout); report
        /// `strategyRead`.
        case readStrategy(StrategyKey, revision: Int)
        /// The rollout is final: wait for the effects still running, then count its pending ones; report
        /// `pendingEffects`.
        case finishEffects
        /// Start a batch of the rollout's pending effects: `preempting` cancels the batch in flight first, and
        /// `wakeWhenDone` wakes the driver when the batch is done (a rollback is confirmed at once). Inside the loop,
        /// report `effectsStarted`.
        case runEffects(preempting: Bool, wakeWhenDone: Bool)
        /// Sleep until `deadline` on the controller's clock, or until a wake (none when `wakeRequested` is already
        /// set); report `woke`.
        case sleep(until: Timestamp)
        /// Wait for the controller to admit a tick; report `admitted`.
        case awaitAdmission
        /// Start the tick: wait for running effects (a command's finish before the world is observed again), then
        /// read the rollout with its failed effects (`lastSeen` spares decoding an unchanged rollout); report
        /// `tickRead`. Not asked when the last tick's record is known to be the stored one (`observe` at once).
        case readForTick(lastSeen: RolloutRecord?)
        /// Observe `record` at `observedAt`, decide and record; `lateness` is how late the observation started
        /// against its schedule. Report `observationCancelled`, `recorded` or `recordRefused`.
        case observe(RolloutRecord, failures: [StoredEffect], observedAt: Timestamp, lateness: Duration)
        /// Wait for the effects the tick's decision started; report `effectsDone`.
        case awaitEffects
        /// Give the admitted tick's slot back; report `admissionReleased`.
        case releaseAdmission
        /// Cut the sleep short.
        case endSleep
        /// Cut the wait for admission short (the tick runs without a slot).
        case endAdmissionWait
        /// Cancel the observation in flight: its tick is dropped.
        case cancelObservation
        /// Call the store again after `delay` (it is retried until it answers).
        case retryStore(after: Duration)
        /// The driver is done.
        case retire(Retirement)
        /// Nothing to do.
        case none
    }

    /// Why a driver is done.
    enum Retirement: Sendable, Equatable {
        /// The rollout is final and has no effect left to run.
        case finished(Phase)
        /// The rollout is gone from the store.
        case gone
        /// The strategy revision the rollout runs is missing from the store.
        case strategyMissing
    }

    /// Something that happened to the driver.
    enum Event: Sendable, Equatable {
        case started
        /// The effects it waited for are done (a replay, or a tick's decision), at the time given.
        case effectsDone(at: Timestamp)
        /// The rollout as read (nil: gone).
        case read(RolloutRecord?, at: Timestamp)
        /// The analysis interval of the rollout's strategy revision (nil: the revision is missing).
        case strategyRead(interval: Duration?, at: Timestamp)
        /// How many effects a final rollout still has pending.
        case pendingEffects(Int)
        /// A batch of effects was started from inside the loop.
        case effectsStarted
        /// The sleep ended (deadline come, or cut short by a wake).
        case woke(at: Timestamp)
        /// The tick may go on, at the time given; `holdingSlot`: it took one of the controller's tick slots.
        case admitted(holdingSlot: Bool, at: Timestamp)
        /// The rollout and its failed effects, read at the start of a tick (nil: gone).
        case tickRead(RolloutRecord?, failures: [StoredEffect], at: Timestamp)
        /// A command cancelled the observation (or the driver is stopping).
        case observationCancelled
        /// The tick recorded: `record` is the rollout as it left it; `committed`: a decision was committed (its
        /// effects may run).
        case recorded(RolloutRecord, committed: Bool, at: Timestamp)
        /// The tick's decision was not recorded (a command changed the rollout meanwhile, or the store failed).
        case recordRefused
        /// The slot was given back.
        case admissionReleased(at: Timestamp)
        /// A decision was committed (a start, a command, a tick) with `effects` new effects.
        case committed(preempting: Bool, effects: Int)
        /// A command is about to be recorded.
        case commandArrived
        /// Asked to observe again at once (a rollback's effects are done).
        case wakeRequested
        /// A store call failed.
        case storeFailed
    }

    /// Where the driver is.
    enum Step: Sendable, Equatable {
        case starting
        case replaying
        case reading
        case readingStrategy(RolloutRecord)
        case finishing(Phase)
        case sleeping(scheduled: Timestamp)
        case awaitingAdmission(scheduled: Timestamp)
        case readingForTick(scheduled: Timestamp)
        case observing
        case awaitingTickEffects(RolloutRecord)
        case releasing
        case retired
    }

    /// Pause before a store call that failed is made again.
    let storeRetryDelay: Duration
    private(set) var step = Step.starting
    /// The rollout's analysis interval, once its strategy revision is read.
    private(set) var interval: Duration?
    /// When the next tick is due: an interval after the last one observed (nil before the first).
    private(set) var plannedTick: Timestamp?
    /// The rollout as the last tick left it, so the loop need not read it again; nil: read it.
    private(set) var known: RolloutRecord?
    /// The same, kept for the next tick: observed without a read while nothing `disturbed` it, else given to the
    /// read, so the store decodes the rollout only when it changed since.
    private(set) var lastSeen: RolloutRecord?
    /// Whether something happened beside the loop since the last tick's read that may have changed the rollout or
    /// its effects: a command arrived, a decision with effects (or a rollback) was committed, a wake came, or the
    /// read found failed effects to report. Until then `lastSeen` is the rollout as stored (every decision on it is
    /// this driver's: commands reach the owner's driver before they are recorded), so the next tick observes it
    /// without reading it again: a tick is one store call, its record, not two. Should the belief be wrong (a write
    /// this driver was not told of), the record's generation check refuses the tick (`staleState`) having written
    /// nothing, and the next tick reads (docs/architecture.md, "Rules that keep it correct", 4).
    private(set) var disturbed = false
    /// Set by a wake: the next sleep is skipped, so the rollout is observed again at once.
    private(set) var wakeRequested = false
    /// Whether the tick running holds one of the controller's tick slots.
    private(set) var holdingSlot = false

    init(storeRetryDelay: Duration) {
        self.storeRetryDelay = storeRetryDelay
    }

    /// What to do after `event`.
    mutating func handle(_ event: Event) -> Action {
        switch event {
        case .started:
            // After a restart, what was decided but not confirmed runs first; the first tick re-reads the world.
            step = .replaying
            return .replayEffects
        case .effectsDone(let now):
            if case .awaitingTickEffects(let record) = step { return endTick(leaving: record, at: now) }
            return next(at: now)
        case .read(let record, let now):
            guard let record else { return retire(.gone) }
            return plan(record, at: now)
        case .strategyRead(let read, let now):
            guard case .readingStrategy(let record) = step else { return .none }
            guard let read else { return retire(.strategyMissing) }
            interval = read
            return plan(record, at: now)
        case .pendingEffects(let count):
            guard case .finishing(let phase) = step else { return .none }
            if count == 0 { return retire(.finished(phase)) }
            return .runEffects(preempting: false, wakeWhenDone: false)
        case .effectsStarted:
            guard case .finishing = step else { return .none }
            step = .reading
            return .readRollout
        case .woke(let now):
            guard case .sleeping(let scheduled) = step else { return .none }
            wakeRequested = false
            return admit(scheduled: scheduled, at: now)
        case .admitted(let holding, let now):
            guard case .awaitingAdmission(let scheduled) = step else { return .none }
            holdingSlot = holding
            if let lastSeen, !disturbed { return observe(lastSeen, failures: [], at: now, scheduled: scheduled) }
            step = .readingForTick(scheduled: scheduled)
            return .readForTick(lastSeen: lastSeen)
        case .tickRead(let record, let failures, let start):
            guard case .readingForTick(let scheduled) = step else { return .none }
            // Read now: what was reported beside the loop before is in it, but failures to report may bring effects.
            disturbed = !failures.isEmpty
            guard let record, !record.rollout.phase.isTerminal else { return endTick(leaving: nil, at: start) }
            return observe(record, failures: failures, at: start, scheduled: scheduled)
        case .observationCancelled, .recordRefused:
            guard step == .observing else { return .none }
            return endTick(leaving: nil, at: nil)
        case .recorded(let record, let committed, let now):
            guard step == .observing else { return .none }
            guard committed else { return endTick(leaving: record, at: now) }
            step = .awaitingTickEffects(record)
            return .awaitEffects
        case .admissionReleased(let now):
            guard step == .releasing else { return .none }
            return next(at: now)
        case .committed(let preempting, let effects):
            // A rollback is confirmed as soon as its effects are done, not an interval later.
            guard preempting || effects > 0 else { return .none }
            disturbed = true  // effects may fail, and the next tick reports them
            return .runEffects(preempting: preempting, wakeWhenDone: preempting)
        case .commandArrived:
            disturbed = true
            return step == .observing ? .cancelObservation : .none
        case .wakeRequested:
            wakeRequested = true
            disturbed = true
            switch step {
            case .sleeping: return .endSleep
            case .awaitingAdmission: return .endAdmissionWait
            default: return .none
            }
        case .storeFailed:
            return .retryStore(after: storeRetryDelay)
        }
    }

    /// The loop goes on: with the rollout as the last tick left it, or read again.
    private mutating func next(at now: Timestamp?) -> Action {
        guard let record = known, let now else {
            known = nil
            step = .reading
            return .readRollout
        }
        known = nil
        return plan(record, at: now)
    }

    /// What a rollout read (or left by a tick) at `now` leads to: its final effects, its strategy, or a sleep.
    private mutating func plan(_ record: RolloutRecord, at now: Timestamp) -> Action {
        if record.rollout.phase.isTerminal {
            step = .finishing(record.rollout.phase)
            return .finishEffects
        }
        guard let interval else {
            step = .readingStrategy(record)
            return .readStrategy(record.rollout.strategy, revision: record.rollout.strategyRevision)
        }
        // After a restart the cadence goes on from the last recorded observation: no sample is taken twice.
        let deadline = plannedTick ?? record.observedAt.map { $0 + interval } ?? now
        // The schedule the tick is judged against: while this driver runs, its own next tick (so a tick that
        // overran the interval makes the next one late); a deadline missed while no driver ran (the controller was
        // down) counts from now, so lateness measures the controller, not its downtime.
        step = .sleeping(scheduled: plannedTick ?? max(deadline, now))
        return .sleep(until: deadline)
    }

    /// The tick due at `scheduled` observes `record` from `start` on.
    private mutating func observe(
        _ record: RolloutRecord, failures: [StoredEffect], at start: Timestamp, scheduled: Timestamp
    ) -> Action {
        guard let interval else { return .none }
        // The next tick is due an interval after this observation, not after this tick woke: when many woke at
        // once (after a stall, every rollout that fell due during it), their observations spread out as they
        // are admitted, and so do their next ticks. Anchored at the wake-up they stayed bunched: every interval
        // the same burst, each tick of it up to the burst's length late, for good (BENCHMARKS.md).
        plannedTick = start + interval
        step = .observing
        return .observe(record, failures: failures, observedAt: start, lateness: max(.zero, start - scheduled))
    }

    /// The tick that was due at `scheduled` woke at `now`: it waits for admission (the wait counts as lateness). The
    /// next one is due an interval after this one observes (`tickRead` sets it), or after it woke if it does not.
    private mutating func admit(scheduled: Timestamp, at now: Timestamp) -> Action {
        if let interval { plannedTick = now + interval }
        step = .awaitingAdmission(scheduled: scheduled)
        return .awaitAdmission
    }

    /// The tick is over, leaving `record` (nil: read the rollout again); its slot goes back first.
    private mutating func endTick(leaving record: RolloutRecord?, at now: Timestamp?) -> Action {
        known = record
        lastSeen = record
        if holdingSlot {
            holdingSlot = false
            step = .releasing
            return .releaseAdmission
        }
        return next(at: now)
    }

    private mutating func retire(_ why: Retirement) -> Action {
        step = .retired
        return .retire(why)
    }
}
