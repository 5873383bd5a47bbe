/// Decides what a rollout does next: the one pure function the controller calls every tick and for every
/// command (docs/architecture.md rule 1). No clock, no I/O: time comes in as `now`, the world as `input`.
///
/// Level-based and idempotent: effects are absolute and are emitted again whenever what the router or
/// the workload reports differs from what the state wants, so a failed or lost effect is retried simply by
/// deciding again. A terminal rollout never changes. See docs/decide.md for every rule.
public func decide(_ rollout: Rollout, strategy: Strategy, input: DecisionInput, now: Timestamp) -> Decision {
    guard !strategy.stages.isEmpty else {
        return Decision(rollout: rollout, rejection: "strategy \(strategy.key) has no stages")
    }
    var decider = Decider(rollout: rollout, strategy: strategy, now: now)
    if rollout.phase.isTerminal {
        if case .command = input {
            decider.reject("rollout \(rollout.id) is \(rollout.phase.rawValue); a finished rollout never changes")
        }
        return decider.decision
    }
    switch input {
    case .observed(let observations):
        decider.observe(observations)
        decider.recordReadBack(observations)
    case .command(let command): decider.apply(command)
    }
    return decider.decision
}

extension Rollout {
    /// How long the canary may take to become ready for a stage's weight before the rollout fails.
    public static let progressDeadline: Duration = .seconds(600)
}

/// The working state of one call to `decide`: the rollout being changed and what it has emitted so far.
struct Decider {
    let strategy: Strategy
    /// Never earlier than the rollout's last update, so that a clock stepping back cannot reorder events.
    let now: Timestamp
    var rollout: Rollout
    var effects: [Effect] = []
    var events: [Event] = []
    var rejection: String?
    /// The checks whose sample on this tick is a pass that counts for the current stage.
    var passedNow: Set<String> = []
    private let original: Rollout

    init(rollout: Rollout, strategy: Strategy, now: Timestamp) {
        self.rollout = rollout
        self.original = rollout
        self.strategy = strategy
        self.now = max(now, rollout.updatedAt)
    }

    var decision: Decision {
        if rejection != nil { return Decision(rollout: original, rejection: rejection) }
        var result = rollout
        if result != original || !events.isEmpty { result.updatedAt = now }
        return Decision(rollout: result, effects: effects, events: events)
    }

    var lastStageIndex: Int { strategy.stages.count - 1 }

    /// The current stage; the index is clamped so that a state from another revision cannot trap.
    var stage: Stage { strategy.stages[min(max(rollout.stageIndex, 0), lastStageIndex)] }

    mutating func reject(_ reason: String) {
        rejection = reason
    }

    mutating func emit(
        _ type: EventType, actor: String = Event.controller, reason: String? = nil, message: String,
        data: [String: JSONValue] = [:]
    ) {
        events.append(
            Event(
                time: now, rollout: rollout.id, strategy: rollout.strategy, type: type, stage: rollout.stageIndex,
                weight: rollout.desiredWeight, actor: actor, reason: reason, message: message, data: data))
    }

    /// Adds `effect` unless this decision already holds it.
    mutating func add(_ effect: Effect) {
        if !effects.contains(effect) { effects.append(effect) }
    }

    // MARK: - Observations

    mutating func observe(_ observations: Observations) {
        let phaseAtStart = rollout.phase
        recordEffectFailures(observations.failedEffects)
        if case .failed(let text) = observations.canary, canaryServesTraffic {
            let reason = sanitizedExcerpt(text)
            startRollback(
                cause: .canaryFailed(reason: reason), actor: Event.controller,
                reason: "canary failed: \(reason)")
            return
        }
        if canaryServesTraffic, let reason = canaryDownByRouter(observations) {
            startRollback(
                cause: .canaryFailed(reason: reason), actor: Event.controller, reason: "canary failed: \(reason)")
            return
        }
        analyze(observations.samples)
        guard rollout.phase == phaseAtStart else { return }
        switch rollout.phase {
        case .pending, .progressing, .paused: progress(observations)
        case .promoting: continuePromotion(observations)
        case .baking: continueBake(observations)
        case .rollingBack: continueRollback(observations)
        case .succeeded, .rolledBack, .failed: break
        }
    }

    /// Whether the canary still matters to users: until promotion is confirmed or a rollback starts.
    private var canaryServesTraffic: Bool {
        switch rollout.phase {
        case .pending, .progressing, .paused: true
        case .promoting: rollout.stablePromotedAt == nil
        case .baking, .rollingBack, .succeeded, .rolledBack, .failed: false
        }
    }

    private mutating func recordEffectFailures(_ failures: [EffectFailure]) {
        let previous = rollout.failingEffects ?? []
        for failure in failures where !previous.contains(failure.effect) {
            let error = sanitizedExcerpt(failure.message)
            emit(
                .effectFailed, reason: "EffectFailed",
                message: "\(failure.effect) failed: \(error); it is retried while it is still needed",
                data: ["effect": .string("\(failure.effect)"), "error": .string(error)])
        }
        let current = failures.map(\.effect)
        rollout.failingEffects = current.isEmpty ? nil : current
    }

    /// Pending, Progressing, Paused: canary capacity first, then traffic, then the hold, then the next stage.
    private mutating func progress(_ observations: Observations) {
        let stage = stage
        if rollout.desiredWeight != stage.weight {
            enterStage(stage, observations)
            return
        }
        if rollout.stageStartedAt == nil {
            guard observations.routerWeight == rollout.desiredWeight else {
                add(.setWeight(rollout.desiredWeight))
                return
            }
            rollout.stageStartedAt = now
            rollout.holdProgress = HoldProgress(countedUntil: now)
            let hold =
                stage.pause
                ? "waits for `sluice promote`" : "holds for \(format(stage.hold ?? .zero)) of passing checks"
            emit(
                .trafficShifted,
                message: "router reads back \(rollout.desiredWeight)% to the canary; stage \(stage.name) \(hold)",
                data: ["stage": .string(stage.name)])
        } else {
            watchDrift(observations)
            accrueHold(observations)
        }
        if rollout.phase == .progressing, stage.pause, rollout.holdWaivedBy == nil {
            rollout.phase = .paused
            rollout.pause = .stageGate
            emit(
                .paused, reason: "StageGate",
                message: "stage \(stage.name) waits for `sluice promote`; analysis keeps running",
                data: ["stage": .string(stage.name)])
            return
        }
        if rollout.phase == .progressing, stageMayEnd(stage, observations) {
            completeStage(stage)
        }
    }

    /// The stage's weight is not wanted yet: ask for canary capacity and shift traffic once it is ready.
    private mutating func enterStage(_ stage: Stage, _ observations: Observations) {
        if rollout.desiredWeight > 0, observations.routerWeight != rollout.desiredWeight {
            add(.setWeight(rollout.desiredWeight))
        }
        // Capacity first: `.ready` is evidence of capacity for this stage only when the last `deployCanary` did
        // not fail (a failed scale-up leaves the old, smaller canary reporting ready) and, when the workload
        // reports its capacity, that capacity reaches the stage's weight.
        let capacityReached = observations.canaryCapacity.map { $0 >= stage.weight } ?? true
        guard observations.canary == .ready, observations.failedEffects.isEmpty, capacityReached else {
            let requested = rollout.canaryRequestedAt ?? rollout.createdAt
            if now - requested >= Rollout.progressDeadline {
                var detail = "no readiness reported"
                if case .progressing(let why) = observations.canary { detail = why }
                if let capacity = observations.canaryCapacity, capacity < stage.weight {
                    detail = "ready for \(capacity)% only"
                }
                if let failure = observations.failedEffects.first {
                    detail = "\(failure.effect) failed: \(failure.message)"
                }
                detail = sanitizedExcerpt(detail)
                startRollback(
                    cause: .progressDeadline(reason: detail), actor: Event.controller,
                    reason:
                        "canary not ready for \(stage.weight)% within \(format(Rollout.progressDeadline)): \(detail)")
            } else {
                add(.deployCanary(version: rollout.version, weight: stage.weight))
            }
            return
        }
        // Paused stops stage progression: the canary may be ready, but traffic is not shifted until resumed.
        guard rollout.phase != .paused else { return }
        var deployed: [String: JSONValue] = ["version": .string(rollout.version), "capacity": .number(Double(stage.weight))]
        var verified = ""
        if let evidence = observations.canaryEvidence {
            deployed.merge(evidence.data) { kept, _ in kept }
            deployed["checked"] = .bool(evidence.checked)
            verified = ": " + evidence.summary
        }
        emit(
            .canaryDeployed, message: "canary \(rollout.version) is ready for \(stage.weight)% of traffic\(verified)",
            data: deployed)
        rollout.phase = .progressing
        rollout.desiredWeight = stage.weight
        rollout.stageStartedAt = nil
        rollout.holdProgress = nil
        rollout.driftDetectedAt = nil
        effects.removeAll { if case .setWeight = $0 { true } else { false } }
        add(.setWeight(stage.weight))
        emit(
            .stageStarted, message: "stage \(stage.name) started: shifting \(stage.weight)% of traffic to the canary",
            data: ["stage": .string(stage.name)])
    }

    /// Drift: the router was at the desired weight and now reads back something else (a hand edit).
    private mutating func watchDrift(_ observations: Observations) {
        guard let actual = observations.routerWeight else {
            add(.setWeight(rollout.desiredWeight))
            return
        }
        if actual != rollout.desiredWeight {
            add(.setWeight(rollout.desiredWeight))
            if rollout.driftDetectedAt == nil {
                rollout.driftDetectedAt = now
                emit(
                    .driftDetected, reason: "Drift",
                    message: "router reads back \(actual)% but the canary should have \(rollout.desiredWeight)%; "
                        + "setting it again",
                    data: ["actual": .number(Double(actual)), "desired": .number(Double(rollout.desiredWeight))])
            }
        } else if rollout.driftDetectedAt != nil {
            rollout.driftDetectedAt = nil
            emit(.driftCorrected, message: "router reads back \(actual)% again")
        }
    }

    /// A stage ends on a tick where the router reads back its weight, its hold is backed by passing samples
    /// (or was waived by `promote`), and every check of the stage passes on this very tick: an open no-data or
    /// breach streak, or a check without a sample now, keeps it from ending. No-data never helps.
    private func stageMayEnd(_ stage: Stage, _ observations: Observations) -> Bool {
        guard rollout.stageStartedAt != nil, observations.routerWeight == rollout.desiredWeight,
            rollout.driftDetectedAt == nil
        else { return false }
        if rollout.holdWaivedBy == nil {
            if stage.pause { return false }
            if (rollout.holdProgress?.held ?? .zero) < (stage.hold ?? .zero) { return false }
        }
        return everyCheckPassedNow && missingEvidence().isEmpty
    }

    /// The checks of the current stage that keep it from ending, with why.
    func missingEvidence() -> [String] {
        strategy.checks(inStage: rollout.stageIndex).compactMap { check in
            let state = rollout.checks[check.name] ?? CheckState()
            if state.consecutiveBreaches > 0 { return "\(check.name) (open breach streak)" }
            if state.consecutiveNoData > 0 { return "\(check.name) (latest sample has no data)" }
            if !state.passedInStage { return "\(check.name) (no pass yet in this stage)" }
            return nil
        }
    }

    private mutating func completeStage(_ stage: Stage) {
        var data: [String: JSONValue] = [
            "stage": .string(stage.name),
            "checks": .array(strategy.checks(inStage: rollout.stageIndex).map { .string($0.name) }),
        ]
        if let actor = rollout.holdWaivedBy { data["holdWaivedBy"] = .string(actor) }
        emit(.stageCompleted, message: "stage \(stage.name) completed: every check passed", data: data)
        if rollout.stageIndex >= lastStageIndex {
            rollout.phase = .promoting
            add(.promoteStable(version: rollout.version))
            emit(.promoting, message: "last stage completed: making \(rollout.version) the stable version")
        } else {
            moveToStage(rollout.fullPromotionRequested ? lastStageIndex : rollout.stageIndex + 1)
        }
    }

    /// Starts entering stage `index`: per-stage evidence is reset and canary capacity is asked for first.
    mutating func moveToStage(_ index: Int) {
        rollout.stageIndex = index
        rollout.stageStartedAt = nil
        rollout.holdProgress = nil
        rollout.driftDetectedAt = nil
        rollout.canaryRequestedAt = now
        if !rollout.fullPromotionRequested { rollout.holdWaivedBy = nil }
        resetChecks()
        add(.deployCanary(version: rollout.version, weight: stage.weight))
    }

    /// Promoting: `promoteStable` until it is confirmed, then traffic back to the (new) stable.
    private mutating func continuePromotion(_ observations: Observations) {
        guard rollout.stablePromotedAt != nil else {
            if observations.routerWeight != rollout.desiredWeight { add(.setWeight(rollout.desiredWeight)) }
            // Any failure reported for the last effects (an earlier one stops the list before promoteStable
            // runs) means no evidence that the stable was promoted: ask again.
            guard observations.failedEffects.isEmpty else {
                add(.promoteStable(version: rollout.version))
                return
            }
            rollout.stablePromotedAt = now
            rollout.desiredWeight = 0
            effects = []
            var data: [String: JSONValue] = ["version": .string(rollout.version)]
            if let pools = rollout.pools {
                rollout.pools = Pools(stable: pools.canary, canary: pools.stable)
                data["stable"] = .array(pools.canary.map { .string($0) })
                data["previousStable"] = .array(pools.stable.map { .string($0) })
            }
            emit(
                .stablePromoted,
                message: "\(rollout.version) is the stable version now; moving traffic back to stable", data: data)
            addCleanup()
            return
        }
        guard observations.routerWeight == 0 else {
            addCleanup()
            return
        }
        retryFailedCleanup(observations)
        if let bake = strategy.bake {
            startBake(bake)
        } else {
            finishPromotion()
        }
    }

    /// Succeeded: the new version is the stable one for good. `note` says how a bake ended, when there was one.
    mutating func finishPromotion(note: String? = nil, actor: String = Event.controller, data extra: [String: JSONValue] = [:]) {
        rollout.phase = .succeeded
        var data: [String: JSONValue] = ["version": .string(rollout.version)]
        if let pools = rollout.pools {
            data["stable"] = .array(pools.stable.map { .string($0) })
            data["canary"] = .array(pools.canary.map { .string($0) })
            data["poolsSwapped"] = true
        }
        data.merge(extra) { _, new in new }
        emit(
            .promoted, actor: actor,
            message: "\(rollout.version) promoted: stable serves all traffic" + (note.map { "; \($0)" } ?? ""),
            data: data)
    }

    // MARK: - Bake

    /// Baking starts once the promotion is confirmed and the router reads back all traffic on the new version:
    /// the bake's threshold checks keep their streaks and need a new pass (docs/decide.md "Baking").
    private mutating func startBake(_ bake: Bake) {
        rollout.phase = .baking
        rollout.bakeStartedAt = now
        rollout.stageStartedAt = now
        rollout.driftDetectedAt = nil
        // Streaks carry on from the last stage (one streak is told once); a pass must come after the bake started.
        var checks: [String: CheckState] = [:]
        for check in strategy.bakeChecks {
            var state = rollout.checks[check.name] ?? CheckState()
            state.passedInStage = false
            checks[check.name] = state
        }
        rollout.checks = checks
        let names = strategy.bakeChecks.map(\.name)
        var data: [String: JSONValue] = [
            "version": .string(rollout.version), "duration": .string(bake.duration.goString),
            "checks": .array(names.map { .string($0) }),
        ]
        if let pools = rollout.pools {
            data["stable"] = .array(pools.stable.map { .string($0) })
            data["previousStable"] = .array(pools.canary.map { .string($0) })
        }
        emit(
            .bakeStarted,
            message: "\(rollout.version) serves all traffic; baking for \(format(bake.duration)): "
                + "\(names.isEmpty ? "no threshold check" : names.joined(separator: ", ")) keep watching it, "
                + "and a breach swaps the pools back",
            data: data)
    }

    /// Baking: all traffic stays on the new version (set again on drift); the bake ends on the first tick after its
    /// duration on which every bake check passes. No-data never ends it, a breach streak rolls back (analyze).
    private mutating func continueBake(_ observations: Observations) {
        watchDrift(observations)
        guard let started = rollout.bakeStartedAt else { return }
        let duration = strategy.bake?.duration ?? .zero
        guard now - started >= duration, observations.routerWeight == 0, rollout.driftDetectedAt == nil,
            strategy.bakeChecks.allSatisfy({ passedNow.contains($0.name) })
        else { return }
        finishPromotion(
            note: "the bake of \(format(duration)) passed", data: ["bake": .string(duration.goString)])
    }

    /// `promote` or `--supersede` during a bake: it ends now and the new version stays the stable one.
    mutating func endBakeEarly(actor: String, why: String) {
        let duration = strategy.bake?.duration ?? .zero
        var data: [String: JSONValue] = ["bake": .string(duration.goString), "bakeEndedBy": .string(actor)]
        if let remaining = rollout.bakeRemaining(in: strategy, now: now) {
            data["bakeRemaining"] = .string(remaining.goString)
        }
        finishPromotion(note: "the bake was ended early by \(actor) (\(why))", actor: actor, data: data)
    }

    /// RollingBack: weight 0 again and again until the router reads it back; cleanup never blocks that.
    private mutating func continueRollback(_ observations: Observations) {
        if let step = rollout.undo {
            continueUndo(step, observations)
            return
        }
        guard observations.routerWeight == 0 else {
            addCleanup()
            return
        }
        retryFailedCleanup(observations)
        let cause = rollout.rollbackCause ?? .command(actor: Event.controller, reason: rollout.endReason ?? "")
        rollout.phase = cause.finalPhase
        let reason = rollout.endReason ?? "rolled back"
        if rollout.phase == .failed {
            emit(.failed, reason: reasonCode(cause), message: "rollout failed, traffic is on stable: \(reason)")
        } else {
            emit(.rolledBack, reason: reasonCode(cause), message: "rolled back, traffic is on stable: \(reason)")
        }
    }

    /// Traffic to stable first, then the canary goes away.
    mutating func addCleanup() {
        add(.setWeight(0))
        add(.scaleDownCanary)
        add(.finalizeTraffic)
    }

    /// Once traffic is confirmed on stable, cleanup that failed last tick is tried once more with the verdict.
    private mutating func retryFailedCleanup(_ observations: Observations) {
        for failure in observations.failedEffects
        where failure.effect == .scaleDownCanary
            || failure.effect == .finalizeTraffic
        {
            add(failure.effect)
        }
    }

    // MARK: - Rollback

    /// Every rollback starts here: the FIRST effect puts the canary at weight 0, whatever came before.
    mutating func startRollback(cause: RollbackCause, actor: String, reason: String) {
        let from = rollout.phase
        // A bake undoes the promotion: the pools take their roles from before it, so weight 0 puts all traffic
        // on the previous version again.
        let swappedBack = from == .baking ? rollout.pools : nil
        if let pools = swappedBack { rollout.pools = Pools(stable: pools.canary, canary: pools.stable) }
        rollout.phase = .rollingBack
        rollout.pause = nil
        rollout.desiredWeight = 0
        rollout.rollbackCause = cause
        rollout.endReason = reason
        rollout.driftDetectedAt = nil
        effects = []
        // A Deployment's bake: the stable Deployment already runs the new version, so weight 0 alone would keep
        // it; its previous pod template comes back first, traffic first (continueUndo).
        var undoing = false
        if from == .baking, swappedBack == nil, case .deployment = strategy.target { undoing = true }
        if undoing {
            rollout.undo = .previousCanary
            add(.deployPreviousCanary(promoted: rollout.version))
        } else {
            addCleanup()
        }
        var data: [String: JSONValue] = ["from": .string(from.rawValue)]
        switch cause {
        case .breach(let check), .noData(let check): data["check"] = .string(check)
        case .superseded(_, let by): data["supersededBy"] = .string(by)
        case .command, .canaryFailed, .progressDeadline: break
        }
        if from == .promoting {
            data["promoteStableRequested"] = true
        }
        if let pools = rollout.pools, swappedBack != nil {
            data["poolsSwappedBack"] = true
            data["stable"] = .array(pools.stable.map { .string($0) })
        }
        if undoing { data["undo"] = .string(PromotionUndo.previousCanary.rawValue) }
        let how =
            undoing
            ? "the stable Deployment's pod template from before the promotion runs as the canary and takes all "
                + "traffic first, then the stable Deployment gets it back"
            : "traffic to stable first"
        emit(
            .rollbackStarted, actor: actor, reason: reasonCode(cause),
            message: "rolling back from \(from.rawValue): \(reason); \(how)", data: data)
    }

    func reasonCode(_ cause: RollbackCause) -> String { cause.kind.rawValue }

    /// RollingBack from a Deployment's bake (`PromotionUndo`): the stable's previous pod template runs as the
    /// canary, takes all traffic, the stable Deployment gets it back, and then traffic returns to stable as in
    /// every rollback. Each step waits for its result to be read back; a failed effect is asked for again.
    private mutating func continueUndo(_ step: PromotionUndo, _ observations: Observations) {
        let promoted = rollout.version
        let failed = Set(observations.failedEffects.map(\.effect))
        switch step {
        case .previousCanary:
            guard !failed.contains(.deployPreviousCanary(promoted: promoted)) else {
                add(.deployPreviousCanary(promoted: promoted))
                return
            }
            switch observations.canary {
            case .ready:
                rollout.undo = .previousTraffic
                rollout.desiredWeight = 100
                add(.setWeight(100))
                emit(
                    .canaryDeployed,
                    message: "the canary Deployment runs the pod template from before \(promoted) with capacity for "
                        + "all traffic; moving all traffic to it",
                    data: ["previousTemplate": true])
            case .failed(let reason):
                // The previous version cannot run beside the new one (no capacity for a second full set of pods, an
                // image that can no longer be pulled): the stable Deployment is restored in place, by its own
                // rolling update, rather than leaving all traffic on the version that breached.
                rollout.undo = .restoreInPlace
                add(.restoreStable(promoted: promoted))
                emit(
                    .effectFailed, reason: "EffectFailed",
                    message: "the pod template from before \(promoted) did not become ready as the canary: "
                        + "\(sanitizedExcerpt(reason)); restoring the stable Deployment in place instead",
                    data: ["effect": .string("\(Effect.deployPreviousCanary(promoted: promoted))"),
                        "error": .string(sanitizedExcerpt(reason))])
            case .progressing, nil:
                break
            }
        case .previousTraffic:
            guard observations.routerWeight == 100 else {
                add(.setWeight(100))
                return
            }
            rollout.undo = .restoreStable
            add(.restoreStable(promoted: promoted))
            emit(
                .trafficShifted,
                message: "router reads back 100% to the canary, which runs the pod template from before \(promoted); "
                    + "restoring the stable Deployment",
                data: ["previousTemplate": true])
        case .restoreStable, .restoreInPlace:
            guard !failed.contains(.restoreStable(promoted: promoted)) else {
                if observations.routerWeight != rollout.desiredWeight { add(.setWeight(rollout.desiredWeight)) }
                add(.restoreStable(promoted: promoted))
                return
            }
            let inPlace = step == .restoreInPlace
            rollout.undo = nil
            rollout.desiredWeight = 0
            emit(
                .stableRestored,
                message: "the stable Deployment runs its pod template from before \(promoted) again"
                    + (inPlace ? " (restored in place)" : "; moving traffic back to stable"),
                data: ["promoted": .string(promoted), "inPlace": .bool(inPlace)])
            addCleanup()
        }
    }
}

/// A duration the way strategies write it: `90s` is `1m30s`, `2h`, `250ms`.
func format(_ duration: Duration) -> String {
    var ms = duration.milliseconds
    if ms == 0 { return "0s" }
    var text = ms < 0 ? "-" : ""
    ms = abs(ms)
    let hours = ms / 3_600_000
    let minutes = ms / 60_000 % 60
    let seconds = ms / 1000 % 60
    let millis = ms % 1000
    if hours > 0 { text += "\(hours)h" }
    if minutes > 0 { text += "\(minutes)m" }
    if seconds > 0 { text += "\(seconds)s" }
    if millis > 0 { text += "\(millis)ms" }
    return text
}

extension Effect: CustomStringConvertible {
    /// A short form for events and logs, e.g. `setWeight(25)`.
    public var description: String {
        switch self {
        case .deployCanary(let version, let weight): "deployCanary(\(version), \(weight)%)"
        case .setWeight(let weight): "setWeight(\(weight))"
        case .promoteStable(let version): "promoteStable(\(version))"
        case .deployPreviousCanary(let promoted): "deployPreviousCanary(before \(promoted))"
        case .restoreStable(let promoted): "restoreStable(before \(promoted))"
        case .scaleDownCanary: "scaleDownCanary"
        case .finalizeTraffic: "finalizeTraffic"
        }
    }
}
