import Logging
import SluiceCore
import SluiceHTTP
import SluiceStore

/// Drives one rollout by carrying out what its `DriverSchedule` decides: replays its unconfirmed effects, then
/// ticks at its analysis interval until it is final and has nothing left to run. One driver per rollout, so a slow
/// provider delays only its own rollout; commands reach it through `Controller.command`, which preempts an
/// in-flight observation. The schedule decides what happens and when; this actor only does it (the store, the
/// providers, the clock, the tasks it can cut short) and reports back.
actor RolloutDriver {
    nonisolated let id: String
    /// The shard of the rollout's strategy: the driver acts only while the controller may act on it.
    nonisolated let shard: Int
    /// Set once the driver stops for good (its shard's lease was lost): it records and acts on nothing more.
    private nonisolated let stopped = Locked(false)
    /// The drive loop while `run()` runs, for `stop()` to cancel.
    var driving: Task<Void, Never>?
    let controller: Controller
    var logger: Logger
    /// What the driver does next (pure): every action below comes from it, every outcome goes back to it.
    var schedule: DriverSchedule
    /// The strategy revision the rollout runs, once read (it never changes during a rollout).
    var strategy: StoredStrategy?
    /// The observation in flight, for a command to cancel.
    var observation: Task<Observations, Never>?
    /// The latest batch of effects while it runs (nil once it is done).
    var effects: Task<Void, Never>?
    /// Counts batches, so a finished batch knows whether it is still the latest.
    var effectsBatch = 0
    /// The sleep until the next tick, for a wake to cut short.
    var sleeping: Task<Void, any Error>?
    /// The wait for admission, for a wake to cut short.
    var admissionWait: Task<Void, any Error>?

    init(id: String, shard: Int, controller: Controller) {
        self.id = id
        self.shard = shard
        self.controller = controller
        var logger = controller.logger
        logger[metadataKey: "rollout.id"] = "\(id)"
        self.logger = logger
        schedule = DriverSchedule(storeRetryDelay: controller.options.storeRetryDelay)
    }

    var store: any RolloutStore { controller.store }
    var clock: any SluiceClock { controller.clock }

    /// The loop: replay, then tick every interval until the rollout is final; ends on cancellation or `stop()`,
    /// and cuts short effects still running (they stay pending and are replayed by the next run).
    func run() async {
        guard !isStopped else { return }
        if controller.ownership == nil {
            await drive()  // one replica: nothing stops a driver but the end of `run()`, so no task to cancel it by
        } else {
            let loop = Task { await self.drive() }
            driving = loop
            await withTaskCancellationHandler {
                await loop.value
            } onCancel: {
                loop.cancel()
            }
            driving = nil
        }
        if let effects {
            effects.cancel()
            await effects.value
        }
    }

    /// Whether the driver stopped for good.
    nonisolated var isStopped: Bool { stopped.current }

    /// Stops the driver for good and waits until its loop and effects have ended: it records and acts on nothing
    /// afterwards (an effect cut short stays pending, for the shard's next owner to replay).
    func stop() async {
        halt()
        let loop = driving
        let running = effects
        await loop?.value
        await running?.value
    }

    /// The store refused a write as `fenced`, or the controller may no longer act on the shard: another replica
    /// owns the rollout now. Stops at once, acting on nothing.
    func lostOwnership(_ why: String) {
        if !isStopped { logger.warning("lost the rollout's shard; this replica stops driving it", metadata: ["why": "\(why)"]) }
        halt()
    }

    private func halt() {
        stopped.withLock { $0 = true }
        driving?.cancel()
        effects?.cancel()
        sleeping?.cancel()
        observation?.cancel()
    }

    /// Waits for the running batch of effects; cancelling the waiter cancels the batch.
    func awaitEffects() async {
        guard let task = effects else { return }
        _ = await task.resultCancellingWithWaiter()
    }

    private func drive() async {
        logger.debug("driver started")
        var action = schedule.handle(.started)
        // This task lives as long as the rollout, and a task keeps the memory of its deepest await until it ends
        // (Swift's task allocator holds on to its slabs): ~50 KB a rollout at 10,000 rollouts (BENCHMARKS.md).
        // So it only sleeps; the actions between two sleeps run in a task of their own, whose memory goes when it
        // ends.
        while !Task.isCancelled {
            switch action {
            case .sleep(let deadline):
                await sleep(until: deadline)
                if Task.isCancelled { return }
                action = schedule.handle(.woke(at: clock.now()))
            case .retire(let why):
                retired(why)
                return
            default:
                let first = action
                guard let next = await inShortTask({ await $0.carryOut(first) }) else { return }
                action = next
            }
        }
    }

    /// Carries out `first` and the actions that follow it, up to a sleep or the end, and returns that one; nil when
    /// the driver is stopping (a tick slot it holds is given back).
    private func carryOut(_ first: DriverSchedule.Action) async -> DriverSchedule.Action? {
        defer { if schedule.holdingSlot { controller.tickGate.release() } }
        var action = first
        while !Task.isCancelled {
            switch action {
            case .sleep, .retire:
                return action
            case .replayEffects:
                startEffects(preempting: false)
                await awaitEffects()
                action = schedule.handle(.effectsDone(at: clock.now()))
            case .readRollout:
                let read = await retryingStore { try await self.store.rolloutRecord(self.id) }
                guard let read else { return nil }
                action = schedule.handle(.read(read, at: clock.now()))
            case .readStrategy(let key, let revision):
                let found = await strategy(key, revision: revision)
                if Task.isCancelled { return nil }
                action = schedule.handle(.strategyRead(interval: found?.strategy.analysis.interval, at: clock.now()))
            case .finishEffects:
                await awaitEffects()
                let pending = await retryingStore { try await self.store.effects(rollout: self.id, status: .pending) }
                guard let pending else { return nil }
                action = schedule.handle(.pendingEffects(pending.count))
            case .runEffects(let preempting, let wakeWhenDone):
                startEffects(preempting: preempting, wakeWhenDone: wakeWhenDone)
                action = schedule.handle(.effectsStarted)
            case .awaitAdmission:
                let holding = await admission()
                action = schedule.handle(.admitted(holdingSlot: holding, at: clock.now()))
            case .readForTick(let lastSeen):
                await awaitEffects()  // a command's effects finish before the world is observed again
                // The rollout and the failed effects to report, in one read.
                guard
                    let read = await retryingStore({
                        try await self.store.rolloutRecord(self.id, effects: .failed, known: lastSeen)
                    })
                else { return nil }
                action = schedule.handle(.tickRead(read.record, failures: read.effects, at: clock.now()))
            case .observe(let record, let failures, let start, let lateness):
                controller.histograms.tickLateness.record(Double(lateness.milliseconds) / 1000)
                // A span per tick, in the trace of the rollout's last command (or start).
                let happened = await traced("tick", continuing: record.rollout.traceparent) {
                    await self.observeAndRecord(record, failures: failures, start: start)
                }
                action = schedule.handle(happened)
            case .awaitEffects:
                await awaitEffects()
                action = schedule.handle(.effectsDone(at: clock.now()))
            case .releaseAdmission:
                controller.tickGate.release()
                action = schedule.handle(.admissionReleased(at: clock.now()))
            case .endSleep, .endAdmissionWait, .cancelObservation, .retryStore, .none:
                // Answers to a wake, a command or a store failure, carried out where those happen; never a step of
                // the loop (DriverScheduleTests hold the schedule to that).
                assertionFailure("the schedule answered a step of the loop with \(action)")
                logger.error("the driver's schedule stalled; the driver stops", metadata: ["action": "\(action)"])
                return nil
            }
        }
        return nil
    }

    /// Carries out an answer to something that happened beside the loop (a commit, a command, a wake).
    private func carryOutAtOnce(_ action: DriverSchedule.Action) {
        switch action {
        case .runEffects(let preempting, let wakeWhenDone):
            startEffects(preempting: preempting, wakeWhenDone: wakeWhenDone)
        case .endSleep: sleeping?.cancel()
        case .endAdmissionWait: admissionWait?.cancel()
        case .cancelObservation: observation?.cancel()
        default: break
        }
    }

    private func retired(_ why: DriverSchedule.Retirement) {
        switch why {
        case .finished(let phase): logger.debug("driver finished", metadata: ["phase": "\(phase.rawValue)"])
        case .gone: logger.error("the rollout this driver drives is gone from the store")
        case .strategyMissing: break  // logged where it was read
        }
    }

    /// Waits for the controller to admit a tick: true once it has (the schedule gives the slot back); false when a
    /// wake cut the wait short (a rollback's effects are done: it is confirmed at once, not behind the queue) or
    /// the driver is stopping.
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

    /// Observe → decide → record → commit, from `record` read at `start`: what happened, for the schedule.
    private func observeAndRecord(_ record: RolloutRecord, failures: [StoredEffect], start: Timestamp) async
        -> DriverSchedule.Event
    {
        guard let stored = strategy else { return .recordRefused }
        let task = Task { [controller] in
            await Observer(controller: controller).observe(
                record.rollout, strategy: stored.strategy, failures: failures, now: start)
        }
        observation = task
        let observations = await task.resultCancellingWithWaiter().get()
        observation = nil
        if task.isCancelled {
            controller.counters.withLock { $0.ticksPreempted += 1 }
            return .observationCancelled
        }
        let now = clock.now()
        do {
            // The writer neither decodes the rollout again (its generation is compared) nor reads the strategy.
            let tick = TickRecord(
                rolloutID: id, basedOn: record, strategy: stored, samples: Array(observations.samples.values),
                reportedFailures: failures.map(\.id), observedAt: start, now: now)
            let provenance = Provenance.current(controller.tracer)
            let recorded = try await store.record(tick) { rollout, stored in
                var decision = decide(rollout, strategy: stored.strategy, input: .observed(observations), now: now)
                provenance.stampEvents(&decision)
                return decision
            }
            let committedAt = clock.now()
            controller.counters.withLock { $0.ticks += 1 }
            controller.histograms.reconcileDuration.record(Double((committedAt - start).milliseconds) / 1000)
            guard let recorded else { return .recorded(record, committed: false, at: committedAt) }
            await committed(recorded, preempting: false)
            let left = RolloutRecord(rollout: recorded.rollout, generation: recorded.generation, observedAt: start)
            return .recorded(left, committed: true, at: clock.now())
        } catch let error as StoreError where error.code == .staleState {
            // A command was recorded while this tick observed: its observation no longer applies.
            controller.counters.withLock { $0.ticksPreempted += 1 }
        } catch let error as StoreError where error.code == .fenced {
            lostOwnership(error.message)
        } catch is CancellationError {
        } catch {
            controller.counters.withLock { $0.storeErrors += 1 }
            logger.error("cannot record a tick", metadata: ["error": "\(error)"])
        }
        return .recordRefused
    }

    /// Everything that follows a committed decision: counters, logs, notifications, then its effects.
    /// `preempting` (a rollback) cancels effects in flight and runs the new ones at once.
    func committed(_ recorded: RecordedDecision, preempting: Bool) async {
        controller.counters.withLock { $0.decisions += 1 }
        setMetadata("strategy.name", "\(recorded.rollout.strategy)")
        setMetadata("stage.index", "\(recorded.rollout.stageIndex)")
        logTransition(recorded)
        if let stored = await strategy(of: recorded.rollout) {
            controller.notifier.addSinks(for: recorded.rollout.strategy, targets: stored.strategy.notifications)
        }
        carryOutAtOnce(schedule.handle(.committed(preempting: preempting, effects: recorded.effects.count)))
    }

    /// Sets the logger's `key` to `value` when it is not that already: a handler may redo work on every set
    /// (swift-log's `StreamLogHandler` formats all its metadata again, ~9 k instructions), and nearly every commit
    /// is a tick's, with the strategy and stage of the one before.
    private func setMetadata(_ key: String, _ value: String) {
        if logger[metadataKey: key] != .string(value) { logger[metadataKey: key] = .string(value) }
    }

    /// Cancels an observation in flight: a command is about to be recorded.
    func preemptObservation() {
        carryOutAtOnce(schedule.handle(.commandArrived))
    }

    /// Ends the current sleep (or skips the next one), and a wait for admission.
    func wake() {
        carryOutAtOnce(schedule.handle(.wakeRequested))
    }

    /// The strategy revision of `rollout`, read once.
    func strategy(of rollout: Rollout) async -> StoredStrategy? {
        await strategy(rollout.strategy, revision: rollout.strategyRevision)
    }

    /// The strategy revision the rollout runs, read once; nil when it is missing (logged) or the driver stops.
    private func strategy(_ key: StrategyKey, revision: Int) async -> StoredStrategy? {
        if let strategy { return strategy }
        guard let found = await retryingStore({ try await self.store.strategy(key, revision: revision) }) else {
            return nil
        }
        guard let found else {
            logger.error("the strategy revision of the rollout is missing", metadata: ["revision": "\(revision)"])
            return nil
        }
        strategy = found
        return found
    }

    /// Sleeps until `deadline` on the controller's clock, or until a wake (at once when one came meanwhile);
    /// returns on cancellation too.
    private func sleep(until deadline: Timestamp) async {
        if schedule.wakeRequested { return }
        let task = Task { [clock] in try await clock.sleep(until: deadline) }
        sleeping = task
        _ = await task.resultCancellingWithWaiter()
        sleeping = nil
    }

    /// Runs `body` until the store answers, after the schedule's backoff on each failure; nil only when the driver
    /// is cancelled meanwhile.
    func retryingStore<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async -> T? {
        while !Task.isCancelled {
            do {
                return try await body()
            } catch is CancellationError {
                return nil
            } catch let error as StoreError where error.code == .fenced {
                lostOwnership(error.message)
                return nil
            } catch {
                controller.counters.withLock { $0.storeErrors += 1 }
                logger.error("the store failed; retrying", metadata: ["error": "\(error)"])
                guard case .retryStore(let delay) = schedule.handle(.storeFailed) else { return nil }
                try? await clock.sleep(for: delay)  // backoff before retrying
            }
        }
        return nil
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
