/// The contract of the pure decision core. `decide` itself lives in `Rollout+Decide.swift`:
///
///     public func decide(_ rollout: Rollout, strategy: Strategy, input: DecisionInput, now: Timestamp) -> Decision
///
/// and `Rollout.start(...)` builds the first state of a rollout. Both are pure: no clock, no I/O.

/// What `decide` is told: what the controller observed this tick, or a human's command.
public enum DecisionInput: Sendable, Hashable, Codable {
    case observed(Observations)
    case command(Command)
}

/// What the controller saw in one tick, before deciding.
public struct Observations: Sendable, Hashable, Codable {
    /// One sample per check that was queried this tick, keyed by check name.
    public var samples: [String: Sample]
    /// The canary weight read back from the router; nil when it could not be read.
    public var routerWeight: Int?
    /// The canary workload's readiness; nil when it could not be read.
    public var canary: CanaryStatus?
    /// Effects of the last decision that failed (they are retried by re-deciding, never blindly). "Last" means
    /// the most recent decision whose effects ran: a decision without effects (e.g. a command) does not clear
    /// it, because `decide` reads an empty list as evidence that `deployCanary` / `promoteStable` took effect.
    public var failedEffects: [EffectFailure]
    /// The traffic weight (percent) the canary has ready capacity for, when the workload can tell; nil when
    /// unknown. When given, a stage's weight is set only once this reaches it (capacity before traffic).
    public var canaryCapacity: Int?
    /// What the workload verified (or says it did not check) to call the canary ready; `CanaryDeployed` reports it.
    public var canaryEvidence: CanaryEvidence?
    /// The router's own view of the canary's members, when it has one and the canary has traffic; nil otherwise.
    public var routerHealth: RouterCanaryHealth?

    public init(
        samples: [String: Sample] = [:], routerWeight: Int? = nil, canary: CanaryStatus? = nil,
        failedEffects: [EffectFailure] = [], canaryCapacity: Int? = nil, canaryEvidence: CanaryEvidence? = nil,
        routerHealth: RouterCanaryHealth? = nil
    ) {
        self.routerHealth = routerHealth
        self.samples = samples
        self.routerWeight = routerWeight
        self.canary = canary
        self.failedEffects = failedEffects
        self.canaryCapacity = canaryCapacity
        self.canaryEvidence = canaryEvidence
    }
}

/// What a workload verified to call its canary ready, or that it checked nothing (an `upstreams` pool without
/// a health check), so that `CanaryDeployed` never claims more than was seen.
public struct CanaryEvidence: Sendable, Hashable, Codable {
    /// False when nothing was checked: the canary is assumed ready.
    public var checked: Bool
    /// One clause for the event message, e.g. "GET /healthz answered 200 with X-Version v2 on 127.0.0.1:9001".
    public var summary: String
    /// Event data: what was probed, and per member the status and version seen.
    public var data: [String: JSONValue]

    public init(checked: Bool, summary: String, data: [String: JSONValue] = [:]) {
        self.checked = checked
        self.summary = summary
        self.data = data
    }
}

/// The canary's readiness as one observation, with what was verified to reach it.
public struct CanaryReport: Sendable, Hashable {
    public var status: CanaryStatus
    public var evidence: CanaryEvidence?

    public init(status: CanaryStatus, evidence: CanaryEvidence? = nil) {
        self.status = status
        self.evidence = evidence
    }
}

/// Readiness of the canary workload (for `upstreams` targets: of every member's health check, or always
/// `.ready` without one).
public enum CanaryStatus: Sendable, Hashable, Codable {
    case ready
    /// Still becoming available (e.g. pods starting); the reason is for humans.
    case progressing(String)
    /// Will not become available (e.g. the image cannot be pulled).
    case failed(String)
}

/// An effect that the controller could not carry out, and why.
public struct EffectFailure: Sendable, Hashable, Codable {
    public var effect: Effect
    public var message: String
    public init(effect: Effect, message: String) {
        self.effect = effect
        self.message = message
    }
}

/// A human's (or CI's) command, with the actor it is recorded against.
public enum Command: Sendable, Hashable, Codable {
    /// End the current hold or pause now; `full` goes straight to 100 %.
    case promote(actor: String, full: Bool)
    case pause(actor: String)
    case resume(actor: String)
    /// Traffic to stable first, then the canary is scaled down.
    case rollback(actor: String, reason: String)
    /// Another rollout of the same strategy was started with `--supersede`: roll this one back.
    case supersede(actor: String, by: String)
}

/// Something the controller must do to the outside world. Every effect is idempotent and absolute
/// ("weight = 25", "scale to N"), so replaying an unconfirmed one after a restart is safe.
public enum Effect: Sendable, Hashable, Codable {
    /// Create or update the canary with `version`, with capacity for `weight` percent of traffic.
    case deployCanary(version: String, weight: Int)
    /// Set the router to send `weight` percent to the canary and the rest to stable.
    case setWeight(Int)
    /// Make `version` the stable one (patch the stable Deployment and wait; or swap pool roles).
    case promoteStable(version: String)
    /// Run the pod template the stable Deployment had before `promoted` was promoted as the canary, with
    /// capacity for all traffic (a bake's rollback, traffic first; `PromotionUndo`).
    case deployPreviousCanary(promoted: String)
    /// Give the stable Deployment back the pod template it had before `promoted` was promoted, and wait for it.
    case restoreStable(promoted: String)
    /// Scale the canary to zero.
    case scaleDownCanary
    /// Remove what the router created for this rollout (e.g. a managed canary Ingress).
    case finalizeTraffic
}

/// What `decide` returns: the new state, the effects to run (in order), the events that explain it.
///
/// Effects run in order and the first failure stops the list: a later effect may rely on an earlier one
/// (`scaleDownCanary` only after `setWeight(0)`). Failures come back in the next `Observations`.
public struct Decision: Sendable, Hashable {
    public var rollout: Rollout
    public var effects: [Effect]
    public var events: [Event]
    /// Why a command was refused (the API answers 409 with it); the state is then unchanged and nothing runs.
    public var rejection: String?
    public init(rollout: Rollout, effects: [Effect] = [], events: [Event] = [], rejection: String? = nil) {
        self.rollout = rollout
        self.effects = effects
        self.events = events
        self.rejection = rejection
    }
}
