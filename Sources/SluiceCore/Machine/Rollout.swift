/// One attempt to move a strategy's target to a new version: the state `decide` reads and returns.
///
/// Everything the controller needs to resume after a restart is here; the store persists it whole.
public struct Rollout: Sendable, Hashable, Codable {
    /// Unique, assigned at start (e.g. `r-20261124-0001` or a UUID); stable forever.
    public var id: String
    public var strategy: StrategyKey
    /// The strategy revision this rollout runs (a later apply does not change a running rollout).
    public var strategyRevision: Int
    /// The version being rolled out (an image tag for Deployment targets).
    public var version: String
    public var phase: Phase
    /// Index into `strategy.stages` of the current stage.
    public var stageIndex: Int
    /// When the current stage's weight was confirmed at the router (its evidence counts from here);
    /// nil while the stage is still being entered.
    public var stageStartedAt: Timestamp?
    /// The canary weight Sluice wants the router to have now: 0, a stage's weight, or 100.
    public var desiredWeight: Int
    /// Why the rollout is paused, when `phase == .paused`.
    public var pause: PauseCause?
    /// Per check name: streaks and whether it passed in the current stage.
    public var checks: [String: CheckState]
    /// The pools for an `upstreams` target, in their roles for this rollout (after earlier swaps).
    public var pools: Pools?
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    /// Who or what ended or is ending the rollout, and why (rollback reason, failure reason).
    public var endReason: String?
    /// A promotion was requested with `--full`: go straight to 100 %.
    public var fullPromotionRequested: Bool
    /// Why the rollout is rolling (or was rolled) back; decides whether it ends `RolledBack` or `Failed`.
    public var rollbackCause: RollbackCause?
    /// When the canary was last asked for capacity for the current stage; the progress deadline counts from here.
    public var canaryRequestedAt: Timestamp?
    /// The actor whose `promote` waived the current stage's hold or pause gate (the checks must still pass).
    public var holdWaivedBy: String?
    /// Since when the router reads back another weight than `desiredWeight` after it had been reached.
    public var driftDetectedAt: Timestamp?
    /// When `promoteStable` was confirmed; from then on the new version is the stable one and rollback is refused.
    public var stablePromotedAt: Timestamp?
    /// The effects reported failing on the last tick, so that `EffectFailed` is emitted on changes only.
    public var failingEffects: [Effect]?
    /// What the router read back on the last tick, beside `desiredWeight`; nil before the first tick.
    public var router: RouterReadBack? = nil
    /// How much of the current stage's hold passing samples back (Rollout+Hold.swift); nil while entering a stage.
    public var holdProgress: HoldProgress? = nil
    /// The W3C `traceparent` of the request that started the rollout or of the last command on it: the ticks and
    /// effects that carry it out continue its trace, on whichever replica runs them (docs/operations.md, "Traces").
    public var traceparent: String? = nil
    /// When the bake started (the promotion was confirmed and the router read back all traffic on the new
    /// version); nil until then and for strategies without `bake`.
    public var bakeStartedAt: Timestamp? = nil
    /// Where undoing a Deployment's confirmed promotion traffic first stands (a bake's rollback); nil otherwise.
    public var undo: PromotionUndo? = nil

    public init(
        id: String, strategy: StrategyKey, strategyRevision: Int, version: String, phase: Phase = .pending,
        stageIndex: Int = 0, stageStartedAt: Timestamp? = nil, desiredWeight: Int = 0, pause: PauseCause? = nil,
        checks: [String: CheckState] = [:], pools: Pools? = nil, createdAt: Timestamp, updatedAt: Timestamp? = nil,
        endReason: String? = nil, fullPromotionRequested: Bool = false, rollbackCause: RollbackCause? = nil,
        canaryRequestedAt: Timestamp? = nil, holdWaivedBy: String? = nil, driftDetectedAt: Timestamp? = nil,
        stablePromotedAt: Timestamp? = nil, failingEffects: [Effect]? = nil
    ) {
        self.id = id
        self.strategy = strategy
        self.strategyRevision = strategyRevision
        self.version = version
        self.phase = phase
        self.stageIndex = stageIndex
        self.stageStartedAt = stageStartedAt
        self.desiredWeight = desiredWeight
        self.pause = pause
        self.checks = checks
        self.pools = pools
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
        self.endReason = endReason
        self.fullPromotionRequested = fullPromotionRequested
        self.rollbackCause = rollbackCause
        self.canaryRequestedAt = canaryRequestedAt
        self.holdWaivedBy = holdWaivedBy
        self.driftDetectedAt = driftDetectedAt
        self.stablePromotedAt = stablePromotedAt
        self.failingEffects = failingEffects
    }
}

/// Undoing the confirmed promotion of a Deployment, traffic first, when its bake rolls back (docs/decide.md
/// "Baking"): the pod template the stable Deployment ran before the promotion (the workload keeps it) runs as the
/// canary with capacity for all traffic and takes it, the stable Deployment gets that template back, and only then
/// does traffic return to stable. Each step is repeated until its result is read back.
public enum PromotionUndo: String, Sendable, Hashable, Codable {
    /// `deployPreviousCanary` until the canary Deployment, running the previous template, reports ready.
    case previousCanary = "PreviousCanary"
    /// `setWeight(100)` until the router reads it back: all traffic on the previous version.
    case previousTraffic = "PreviousTraffic"
    /// `restoreStable` until it is confirmed: the stable Deployment runs its previous template again, all traffic
    /// on the canary meanwhile.
    case restoreStable = "RestoreStable"
    /// `restoreStable` until it is confirmed, all traffic on stable meanwhile: the previous template could not run
    /// as the canary, so the stable Deployment is restored in place by its own rolling update.
    case restoreInPlace = "RestoreInPlace"
}

/// What started a rollback. A failure of the canary itself ends in `Failed`, everything else in `RolledBack`.
public enum RollbackCause: Sendable, Hashable, Codable {
    /// `sluice rollback --reason`.
    case command(actor: String, reason: String)
    /// A newer rollout of the same strategy was started with `--supersede`.
    case superseded(actor: String, by: String)
    /// `failureLimit` consecutive breaches of a check with `rollback.automatic: true`.
    case breach(check: String)
    /// `noDataLimit` consecutive no-data samples of a check with `onNoData: rollback`.
    case noData(check: String)
    /// The workload reported that the canary cannot become available.
    case canaryFailed(reason: String)
    /// The canary did not become ready within the progress deadline.
    case progressDeadline(reason: String)

    /// The phase the rollback ends in once traffic is back on stable.
    public var finalPhase: Phase {
        switch self {
        case .canaryFailed, .progressDeadline: .failed
        case .command, .superseded, .breach, .noData: .rolledBack
        }
    }
}

/// The phases of docs/api.md ("Words").
public enum Phase: String, Sendable, Hashable, Codable, CaseIterable {
    case pending = "Pending"
    case progressing = "Progressing"
    case paused = "Paused"
    case promoting = "Promoting"
    /// Promoted, all traffic on the new version, and the checks still watching it for `spec.bake.duration`.
    case baking = "Baking"
    case succeeded = "Succeeded"
    case rollingBack = "RollingBack"
    case rolledBack = "RolledBack"
    case failed = "Failed"

    /// No further transition happens from a terminal phase.
    public var isTerminal: Bool { self == .succeeded || self == .rolledBack || self == .failed }

    /// Rolling back or rolled back: entering such a phase preempts whatever the rollout was doing and
    /// supersedes its pending effects.
    public var isRollingBack: Bool { self == .rollingBack || self == .rolledBack || self == .failed }
}

/// Why a rollout is paused; a human `resume` (or `promote`) clears it.
public enum PauseCause: Sendable, Hashable, Codable {
    /// `sluice pause` by an actor.
    case manual(actor: String)
    /// A `pause: true` stage waiting for `sluice promote`.
    case stageGate
    /// A breach with `rollback.automatic: false`.
    case breach(check: String)
    /// `noDataLimit` reached with `onNoData: pause`.
    case noData(check: String)
}

/// The pools of an `upstreams` target in their roles for one rollout.
public struct Pools: Sendable, Hashable, Codable {
    public var stable: [String]
    public var canary: [String]
    public init(stable: [String], canary: [String]) {
        self.stable = stable
        self.canary = canary
    }
}

/// What analysis remembers about one check between samples.
public struct CheckState: Sendable, Hashable, Codable {
    public var consecutiveBreaches: Int
    public var consecutiveNoData: Int
    /// At least one `pass` since the current stage started.
    public var passedInStage: Bool
    public var lastSample: Sample?
    /// A comparison check's accumulated evidence (docs/judge.md); nil for threshold checks.
    public var evidence: ComparisonEvidence? = nil
    /// A comparison's consecutive silent looks (its canary counted nothing where stable's traffic says it should
    /// have had many; docs/judge.md): the second in a row is a breach. Nil when there is none, so a stored state
    /// from before it decodes, and a state without silence encodes as it did.
    public var silentLooks: Int? = nil

    public init(consecutiveBreaches: Int = 0, consecutiveNoData: Int = 0, passedInStage: Bool = false, lastSample: Sample? = nil) {
        self.consecutiveBreaches = consecutiveBreaches
        self.consecutiveNoData = consecutiveNoData
        self.passedInStage = passedInStage
        self.lastSample = lastSample
    }
}

/// pass, breach, or no-data: a sample's verdict.
public enum SampleVerdict: String, Sendable, Hashable, Codable {
    case pass
    case breach
    case noData = "no-data"
}

/// One sample of one check.
public struct Sample: Sendable, Hashable, Codable {
    public var check: String
    public var time: Timestamp
    /// The value, when the provider returned one (NaN and ±Inf are no-data and never stored here).
    public var value: Double?
    public var verdict: SampleVerdict
    /// Why there is no data (provider error text, "empty result", "NaN"), when `verdict == .noData`.
    public var reason: String?
    /// A comparison check's counts for the interval (its `value` is then the e-value).
    public var counts: ComparisonCounts? = nil
    /// A threshold check's `minCount` reading for the window; nil when it has none or it had no data.
    public var count: Double? = nil
    /// How the verdict was reached, for people: "errors 2/118 canary vs 31/10,402 stable; e-value 3.1 of 100 needed".
    public var explanation: String? = nil

    public init(
        check: String, time: Timestamp, value: Double?, verdict: SampleVerdict, reason: String? = nil,
        counts: ComparisonCounts? = nil, count: Double? = nil, explanation: String? = nil
    ) {
        self.check = check
        self.time = time
        self.value = value
        self.verdict = verdict
        self.reason = reason
        self.counts = counts
        self.count = count
        self.explanation = explanation
    }
}
