import Logging
import SluiceCore
import SluiceHTTP
import SluiceStore

/// Drives one rollout: replays its unconfirmed effects, then ticks at its analysis interval until it is
/// final and has nothing left to run. One driver per rollout, so a slow provider delays only its own
/// rollout; commands reach it through `Controller.command`, which preempts an in-flight observation.
actor RolloutDriver {
    nonisolated let id: String
    let controller: Controller
    var logger: Logger
    /// The strategy revision the rollout runs (it never changes during a rollout).
    var cachedStrategy: StoredStrategy?
    var observeTask: Task<Observations, Never>?
    /// The latest batch of effects while it runs (nil once it is done).
    var effectsTask: Task<Void, Never>?
    /// Counts batches, so a finished batch knows whether it is still the latest.
    var effectsBatch = 0
    var sleepTask: Task<Void, any Error>?
    var admissionWait: Task<Void, any Error>?
    /// Set by `wake()`: the next sleep is skipped, so the rollout is observed again at once.
    var wakeRequested = false
    /// When the next tick is due: an interval after the last one observed (nil before the first).
    var plannedTick: Timestamp?
    /// The rollout as the last tick recorded it, so the loop need not read it again; nil: read it.
    var known: RolloutRecord?
    /// The same, kept for the next tick's read: the store decodes the rollout only when it changed since.
    var lastSeen: RolloutRecord?

    init(id: String, controller: Controller) {
        self.id = id
        self.controller = controller
        var logger = controller.logger
        logger[metadataKey: "rollout.id"] = "\(id)"
        self.logger = logger
    }

    var store: any RolloutStore { controller.store }
    var clock: any SluiceClock { controller.clock }

    /// The loop: replay, then tick every interval until the rollout is final; ends on cancellation, and
    /// cuts short effects still running (they stay pending and are replayed by the next run).
    func run() async {
        await drive()
        if let effectsTask {
            effectsTask.cancel()
            await effectsTask.value
        }
    }

    /// Waits for the running batch of effects; cancelling the waiter cancels the batch.
    func awaitEffects() async {
        guard let task = effectsTask else { return }
        _ = await task.resultCancellingWithWaiter()
    }

    private func drive() async {
        logger.debug("driver started")
        // After a restart, what was decided but not confirmed runs first; the first tick re-reads the world.
        await inShortTask { driver in
            driver.startEffects(preempting: false)
            await driver.awaitEffects()
        }
        // This task lives as long as the rollout, and a task keeps the memory of its deepest await until it ends
        // (Swift's task allocator holds on to its slabs): ~50 KB a rollout at 10,000 rollouts (BENCHMARKS.md).
        // So it only sleeps; each step and each tick runs in a task of its own, whose memory goes when it ends.
        while !Task.isCancelled {
            guard let next = await inShortTask({ await $0.nextTick() }) ?? nil else { return }
            await sleep(until: next.deadline)
            if Task.isCancelled { return }
            await inShortTask { await $0.tickNow(scheduled: next.scheduled) }
        }
    }

    /// When the next tick is due, and the schedule it is judged against; nil when the driver is done (the
    /// rollout is final and has nothing left to run, or it is gone). Runs what a final rollout left pending.
    private func nextTick() async -> (deadline: Timestamp, scheduled: Timestamp)? {
        while !Task.isCancelled {
            let record: RolloutRecord
            if let known {
                record = known
            } else {
                guard let read = await retryingStore({ try await self.store.rolloutRecord(self.id) }) else { return nil }
                guard let read else {
                    logger.error("the rollout this driver drives is gone from the store")
                    return nil
                }
                record = read
            }
            known = nil
            if record.rollout.phase.isTerminal {
                await awaitEffects()
                let pending = await retryingStore { try await self.store.effects(rollout: self.id, status: .pending) }
                if pending?.isEmpty ?? true {
                    logger.debug("driver finished", metadata: ["phase": "\(record.rollout.phase.rawValue)"])
                    return nil
                }
                startEffects(preempting: false)
                continue
            }
            guard let strategy = await strategy(of: record.rollout) else { return nil }
            let interval = strategy.strategy.analysis.interval
            // After a restart the cadence goes on from the last recorded observation: no sample is taken twice.
            let deadline = plannedTick ?? record.observedAt.map { $0 + interval } ?? clock.now()
            // The schedule the tick is judged against: while this driver runs, its own next tick (so a tick that
            // overran the interval makes the next one late); a deadline missed while no driver ran (the
            // controller was down) counts from now, so lateness measures the controller, not its downtime.
            return (deadline, plannedTick ?? max(deadline, clock.now()))
        }
        return nil
    }

    /// The tick that was due at `scheduled`, once the controller admits it (the wait counts as lateness). The
    /// next one is due an interval after this one observes (`tick` sets it), or after it woke if it does not.
    private func tickNow(scheduled: Timestamp) async {
        guard let strategy = cachedStrategy else { return }
        plannedTick = clock.now() + strategy.strategy.analysis.interval
        let admitted = await admission()
        defer { if admitted { controller.tickGate.release() } }
        if Task.isCancelled { return }
        known = await tick(strategy, scheduled: scheduled, lastSeen: known ?? lastSeen)
        lastSeen = known
    }

    /// Waits for the controller to admit a tick: true once it has (the caller releases the slot); false when
    /// `wake()` cut the wait short (a rollback's effects are done: it is confirmed at once, not behind the queue)
    /// or the driver is stopping.
    private func admission() async -> Bool {
        let gate = controller.tickGate
        if gate.tryAcquire() { return true }
        let wait = Task { try await gate.acquire() }
        admissionWait = wait
        let result = await wait.resultCancellingWithWaiter()
        admissionWait = nil
        if case .success = result { return true }
        return false
    }

    /// Runs `body` in a task of its own (on this actor) and waits for it; cancelling the waiter cancels it.
    private func inShortTask<T: Sendable>(_ body: @escaping @Sendable (isolated RolloutDriver) async -> T) async -> T {
        await Task { await body(self) }.resultCancellingWithWaiter().get()
    }

    /// One observe → decide → record → act → confirm. `scheduled` is when its observation was due: how late
    /// it started is observed in `tickLateness` (a tick woken early by a command counts as on time). Returns
    /// the rollout as this tick left it, or nil when the caller must read it again.
    func tick(_ stored: StoredStrategy, scheduled: Timestamp, lastSeen: RolloutRecord? = nil) async -> RolloutRecord? {
        await awaitEffects()  // a command's effects finish before the world is observed again
        // The rollout and the failed effects to report, in one read.
        guard
            let read = await retryingStore({
                try await self.store.rolloutRecord(self.id, effects: .failed, known: lastSeen)
            }),
            let record = read.record, !record.rollout.phase.isTerminal
        else { return nil }
        let failures = read.effects
        let start = clock.now()
        // The next tick is due an interval after this observation, not after this tick woke: when many woke at
        // once (after a stall, every rollout that fell due during it), their observations spread out as they are
        // admitted, and so do their next ticks. Anchored at the wake-up they stayed bunched: every interval the
        // same burst, each tick of it up to the burst's length late, for good (BENCHMARKS.md).
        plannedTick = start + stored.strategy.analysis.interval
        controller.counters.withLock { $0.tickLateness.observe(Double(max(0, (start - scheduled).milliseconds)) / 1000) }
        let task = Task { [controller] in
            await Observer(controller: controller).observe(
                record.rollout, strategy: stored.strategy, failures: failures, now: start)
        }
        observeTask = task
        let observations = await task.resultCancellingWithWaiter().get()
        observeTask = nil
        if task.isCancelled {
            controller.counters.withLock { $0.ticksPreempted += 1 }
            return nil
        }
        let now = clock.now()
        do {
            // The writer neither decodes the rollout again (its generation is compared) nor reads the strategy.
            let tick = TickRecord(
                rolloutID: id, basedOn: record, strategy: stored, samples: Array(observations.samples.values),
                reportedFailures: failures.map(\.id), observedAt: start, now: now)
            let recorded = try await store.record(tick) { rollout, stored in
                decide(rollout, strategy: stored.strategy, input: .observed(observations), now: now)
            }
            let committedAt = clock.now()
            controller.counters.withLock {
                $0.ticks += 1
                $0.reconcileDuration.observe(Double((committedAt - start).milliseconds) / 1000)
            }
            guard let recorded else { return record }
            await committed(recorded, preempting: false)
            await awaitEffects()
            return RolloutRecord(rollout: recorded.rollout, generation: recorded.generation, observedAt: start)
        } catch let error as StoreError where error.code == .staleState {
            // A command was recorded while this tick observed: its observation no longer applies.
            controller.counters.withLock { $0.ticksPreempted += 1 }
        } catch is CancellationError {
            return nil
        } catch {
            controller.counters.withLock { $0.storeErrors += 1 }
            logger.error("cannot record a tick", metadata: ["error": "\(error)"])
        }
        return nil
    }

    /// Everything that follows a committed decision: counters, logs, notifications, then its effects.
    /// `preempting` (a rollback) cancels effects in flight and runs the new ones at once.
    func committed(_ recorded: RecordedDecision, preempting: Bool) async {
        controller.counters.withLock { $0.decisions += 1 }
        logger[metadataKey: "strategy.name"] = "\(recorded.rollout.strategy)"
        logger[metadataKey: "stage.index"] = "\(recorded.rollout.stageIndex)"
        logTransition(recorded)
        if let stored = await strategy(of: recorded.rollout) {
            controller.notifier.addSinks(for: recorded.rollout.strategy, targets: stored.strategy.notifications)
        }
        if preempting || !recorded.effects.isEmpty {
            // A rollback is confirmed as soon as its effects are done, not an interval later.
            startEffects(preempting: preempting, wakeWhenDone: preempting)
        }
    }

    /// Cancels an observation in flight: a command is about to be recorded.
    func preemptObservation() {
        observeTask?.cancel()
    }

    /// The strategy revision of `rollout`, read once.
    func strategy(of rollout: Rollout) async -> StoredStrategy? {
        if let cachedStrategy { return cachedStrategy }
        let key = rollout.strategy
        let revision = rollout.strategyRevision
        guard let found = await retryingStore({ try await self.store.strategy(key, revision: revision) }) else {
            return nil
        }
        guard let found else {
            logger.error("the strategy revision of the rollout is missing", metadata: ["revision": "\(revision)"])
            return nil
        }
        cachedStrategy = found
        return found
    }

    /// Sleeps until `deadline` on the controller's clock, or until `wake()`; returns on cancellation too.
    func sleep(until deadline: Timestamp) async {
        if wakeRequested {
            wakeRequested = false
            return
        }
        let task = Task { [clock] in try await clock.sleep(until: deadline) }
        sleepTask = task
        _ = await task.resultCancellingWithWaiter()
        sleepTask = nil
        wakeRequested = false
    }

    /// Ends the current sleep (or skips the next one), and a wait for admission.
    func wake() {
        wakeRequested = true
        sleepTask?.cancel()
        admissionWait?.cancel()
    }

    /// Runs `body` until the store answers; nil only when the driver is cancelled meanwhile.
    func retryingStore<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async -> T? {
        let (logger, counters) = (self.logger, controller.counters)
        return await retryingUntilCancelled(delay: controller.options.storeRetryDelay, clock: clock, failed: { error in
            counters.withLock { $0.storeErrors += 1 }
            logger.error("the store failed; retrying", metadata: ["error": "\(error)"])
        }, body)
    }

    private func logTransition(_ recorded: RecordedDecision) {
        let from = recorded.previous?.phase
        let to = recorded.rollout.phase
        guard from != to else { return }
        let metadata: Logger.Metadata = ["phase": "\(to.rawValue)", "from": "\(from?.rawValue ?? "-")"]
        if to.isRollingBack {
            logger.warning("rollout rolling back", metadata: metadata)
        } else {
            logger.info("rollout phase changed", metadata: metadata)
        }
    }
}
