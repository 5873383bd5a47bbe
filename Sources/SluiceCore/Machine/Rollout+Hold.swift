/// The hold of a stage counts evidence, not wall-clock time (docs/decide.md "Stages"): only the intervals that
/// end with a fresh pass of every check of the stage, while Progressing at the stage's weight, add to it.
/// No-data, breaches, drift and pauses add nothing, and a pass vouches for at most one analysis interval
/// before it (the window its query measures), so a gap in sampling is never held on trust.
public struct HoldProgress: Sendable, Hashable, Codable {
    /// The part of the hold backed by passing samples so far, in milliseconds.
    public var heldMilliseconds: Int64
    /// Where the next interval starts: the last tick of this stage, or the `resume` since.
    public var countedUntil: Timestamp

    public init(heldMilliseconds: Int64 = 0, countedUntil: Timestamp) {
        self.heldMilliseconds = heldMilliseconds
        self.countedUntil = countedUntil
    }

    /// The part of the hold backed by passing samples so far.
    public var held: Duration { .milliseconds(heldMilliseconds) }
}

extension Rollout {
    /// How much of the current stage's hold is still to be backed by passing samples; nil when the rollout is
    /// not holding (stage being entered, not Progressing, a `pause: true` stage, or a hold waived by `promote`).
    public func holdRemaining(in strategy: Strategy) -> Duration? {
        guard phase == .progressing, stageStartedAt != nil, holdWaivedBy == nil,
            strategy.stages.indices.contains(stageIndex), let hold = strategy.stages[stageIndex].hold
        else { return nil }
        return max(.zero, hold - (holdProgress?.held ?? .zero))
    }
}

extension Decider {
    /// Adds the interval since the last tick of this stage to the hold when it is backed by evidence: Progressing,
    /// the router reads back the stage's weight, no drift, and every check of the stage passed on this tick.
    /// Either way the next interval starts now, so time without evidence is never counted later.
    mutating func accrueHold(_ observations: Observations) {
        // A rollout stored before holds were counted: count from its last decision, never from the stage start.
        var progress = rollout.holdProgress ?? HoldProgress(countedUntil: rollout.updatedAt)
        let backed =
            rollout.phase == .progressing && observations.routerWeight == rollout.desiredWeight
            && rollout.driftDetectedAt == nil && everyCheckPassedNow
        if backed {
            let interval = min(max(.zero, now - progress.countedUntil), strategy.analysis.interval)
            progress.heldMilliseconds += interval.milliseconds
        }
        progress.countedUntil = now
        rollout.holdProgress = progress
    }

    /// Whether this tick brought a pass, counted for the current stage, of every check of the stage.
    var everyCheckPassedNow: Bool {
        strategy.checks(inStage: rollout.stageIndex).allSatisfy { passedNow.contains($0.name) }
    }

    /// After a pause, the hold goes on from here: what was held before counts, the paused time does not.
    mutating func restartHoldClock() {
        rollout.holdProgress?.countedUntil = now
    }
}

extension Strategy {
    /// The checks that watch the new version while it bakes: the last stage's threshold checks. A comparison needs
    /// a baseline, and after promotion no other version takes traffic (docs/decide.md "Baking").
    public var bakeChecks: [Check] {
        guard bake != nil else { return [] }
        return checks(inStage: stages.count - 1).filter { $0.compare == nil }
    }
}

extension Rollout {
    /// How long the bake still runs at `now` (zero once its time is up and it waits for a passing tick); nil when
    /// the rollout is not Baking.
    public func bakeRemaining(in strategy: Strategy, now: Timestamp) -> Duration? {
        guard phase == .baking, let started = bakeStartedAt, let bake = strategy.bake else { return nil }
        return max(.zero, bake.duration - (now - started))
    }
}
