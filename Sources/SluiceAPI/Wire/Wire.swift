import SluiceController
import SluiceCore

// The JSON bodies of the API, shared by the server and the CLI so both read the same shapes.

/// `POST /v1/rollouts`.
public struct StartRolloutRequest: Sendable, Hashable, Codable {
    public var strategy: String
    public var namespace: String?
    public var version: String
    /// Roll back an active rollout of the strategy first (`--supersede`).
    public var supersede: Bool?

    public init(strategy: String, namespace: String?, version: String, supersede: Bool? = nil) {
        self.strategy = strategy
        self.namespace = namespace
        self.version = version
        self.supersede = supersede
    }
}

/// `POST /v1/rollouts/{id}/rollback`.
public struct RollbackRequest: Sendable, Hashable, Codable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

/// `POST /v1/rollouts/{id}/promote` (the body is optional).
public struct PromoteRequest: Sendable, Hashable, Codable {
    public var full: Bool?
    public init(full: Bool? = nil) { self.full = full }
}

/// What `PUT /v1/strategies/{ns}/{name}` did.
/// The answer to `DELETE /v1/strategies/{ns}/{name}`: which strategy, and the revision that was its latest.
public struct DeleteResult: Sendable, Hashable, Codable {
    public var strategy: String
    public var revision: Int
    public var deleted: Bool

    public init(strategy: String, revision: Int) {
        self.strategy = strategy
        self.revision = revision
        deleted = true
    }
}

public struct ApplyResult: Sendable, Hashable, Codable {
    public enum Outcome: String, Sendable, Hashable, Codable {
        case created
        case configured
        case unchanged
    }
    public var strategy: String
    public var outcome: Outcome
    public var revision: Int
    /// A line diff of the canonical form against the previous revision (`configured` only).
    public var diff: String?
    public var dryRun: Bool

    public init(strategy: String, outcome: Outcome, revision: Int, diff: String? = nil, dryRun: Bool = false) {
        self.strategy = strategy
        self.outcome = outcome
        self.revision = revision
        self.diff = diff
        self.dryRun = dryRun
    }
}

/// A strategy as the API shows it.
public struct StrategyView: Sendable, Hashable, Codable {
    public var namespace: String
    public var name: String
    public var revision: Int
    public var appliedAt: String
    public var appliedBy: String?
    public var target: String
    public var router: String
    public var stages: [StageView]
    public var checks: [String]
    /// The metric providers by key, redacted: URLs without user info and query, header values hidden.
    public var providers: [String: ProviderView]?
    /// The webhooks, redacted to scheme, host and port.
    public var notifications: [NotificationView]?
    /// The document as applied; only for `release` and `admin` tokens, since it may hold header values and
    /// webhook URLs in clear (docs/api.md).
    public var source: String?

    /// The view of `stored`; `source` only when `showingSource` (the caller may see secrets).
    public init(_ stored: AppliedStrategy, showingSource: Bool) {
        let strategy = stored.strategy
        namespace = strategy.namespace
        name = strategy.name
        revision = stored.revision
        appliedAt = stored.appliedAt.rfc3339
        appliedBy = stored.appliedBy
        switch strategy.target {
        case .deployment(let name, _): target = "deployment/\(name)"
        case .upstreams(let stable, let canary, let health):
            target = "upstreams stable=\(stable.joined(separator: ",")) canary=\(canary.joined(separator: ","))"
                + (health.map { " health=\($0.scheme)://member\($0.path)" } ?? "")
        }
        router = strategy.traffic.kind.rawValue
        stages = strategy.stages.enumerated().map { StageView(index: $0.offset, stage: $0.element) }
        checks = strategy.analysis.checks.map(\.name)
        providers = strategy.analysis.providers.mapValues(ProviderView.init)
        notifications = strategy.notifications.map(NotificationView.init)
        source = showingSource ? stored.source : nil
    }
}

/// A metric provider of a strategy as every role may see it.
public struct ProviderView: Sendable, Hashable, Codable {
    public var kind: String
    /// The address (`prometheus`) or URL (`web`) without user info, query and fragment.
    public var url: String
    /// Header name to `<redacted>`, or to where its value comes from (`fromEnv PROM_KEY`, `fromFile /path`).
    public var headers: [String: String]
    public var bearerTokenFile: String?

    public init(_ config: ProviderConfig) {
        kind = config.kind.rawValue
        switch config {
        case .prometheus(let prometheus):
            url = Redaction.url(prometheus.address)
            headers = prometheus.headers.mapValues(\.description)
            bearerTokenFile = prometheus.bearerTokenFile
        case .web(let web):
            url = Redaction.url(web.url)
            headers = web.headers.mapValues(\.description)
        }
    }
}

/// A webhook of a strategy as every role may see it: its path and query may be the secret.
public struct NotificationView: Sendable, Hashable, Codable {
    /// Scheme, host and port of the webhook URL.
    public var webhook: String
    public var on: [String]

    public init(_ target: NotificationTarget) {
        webhook = Redaction.url(target.webhook, keeping: .origin)
        on = target.on
    }
}

/// One stage of a strategy.
public struct StageView: Sendable, Hashable, Codable {
    public var index: Int
    public var name: String
    public var weight: Int
    /// Hold in seconds; nil for a `pause` stage.
    public var holdSeconds: Double?
    public var pause: Bool

    public init(index: Int, stage: Stage) {
        self.index = index
        name = stage.name
        weight = stage.weight
        holdSeconds = stage.hold.map { Double($0.milliseconds) / 1000 }
        pause = stage.pause
    }
}

/// The last sample of one check.
public struct CheckView: Sendable, Hashable, Codable {
    public var name: String
    public var value: Double?
    public var verdict: String?
    public var time: String?
    public var reason: String?
    public var consecutiveBreaches: Int
    public var consecutiveNoData: Int
    /// How the verdict was reached: a comparison's counts and e-value, a `minCount`'s count (docs/judge.md).
    public var explanation: String? = nil
}

/// A rollout as the API shows it: phase, stage, weight, the hold left, the last sample of each check.
public struct RolloutView: Sendable, Hashable, Codable {
    public var id: String
    public var strategy: String
    public var namespace: String
    public var name: String
    public var revision: Int
    public var version: String
    public var phase: String
    public var stage: StageView?
    public var stageCount: Int?
    /// The canary weight Sluice wants now (`router.weight` is what the router does).
    public var weight: Int
    /// What the router last read back, beside `weight`; nil before the rollout's first tick.
    public var router: RouterView?
    /// Seconds left in the current hold; nil when not holding (entering, paused, pause stage).
    public var holdRemainingSeconds: Double?
    /// Seconds left in the bake while Baking (0 once its time is up and it waits for a passing tick); nil otherwise.
    public var bakeRemainingSeconds: Double? = nil
    /// While a bake's rollback undoes a Deployment's promotion: the step it is on, in words; nil otherwise.
    public var undoing: String? = nil
    /// Why it is paused, when paused.
    public var pausedBecause: String?
    public var checks: [CheckView]
    public var createdAt: String
    public var updatedAt: String
    public var endReason: String?

    public init(_ rollout: Rollout, strategy: Strategy?, now: Timestamp) {
        id = rollout.id
        self.strategy = rollout.strategy.description
        namespace = rollout.strategy.namespace
        name = rollout.strategy.name
        revision = rollout.strategyRevision
        version = rollout.version
        phase = rollout.phase.rawValue
        weight = rollout.desiredWeight
        createdAt = rollout.createdAt.rfc3339
        updatedAt = rollout.updatedAt.rfc3339
        endReason = rollout.endReason
        router = rollout.router.map { RouterView($0, confirmed: rollout.weightConfirmed, now: now) }
        if let strategy, strategy.stages.indices.contains(rollout.stageIndex) {
            let current = strategy.stages[rollout.stageIndex]
            stage = StageView(index: rollout.stageIndex, stage: current)
            stageCount = strategy.stages.count
            holdRemainingSeconds = rollout.holdRemaining(in: strategy).map { Double($0.milliseconds) / 1000 }
            bakeRemainingSeconds = rollout.bakeRemaining(in: strategy, now: now).map { Double($0.milliseconds) / 1000 }
        }
        switch rollout.undo {
        case .previousCanary: undoing = "the previous pod template starting as the canary, for all traffic"
        case .previousTraffic: undoing = "all traffic moving to the canary, which runs the previous pod template"
        case .restoreStable: undoing = "the stable Deployment getting its previous pod template back"
        case .restoreInPlace:
            undoing = "the stable Deployment getting its previous pod template back in place (it could not run as the canary)"
        case nil: undoing = nil
        }
        switch rollout.pause {
        case .manual(let actor): pausedBecause = "paused by \(actor)"
        case .stageGate: pausedBecause = "waiting for sluice promote (pause stage)"
        case .breach(let check): pausedBecause = "check \(check) breached (automatic rollback is off)"
        case .noData(let check): pausedBecause = "check \(check) has had no data for too long"
        case nil: pausedBecause = nil
        }
        var names = rollout.checks.keys.sorted()
        if let strategy {
            let inUse = rollout.phase == .baking ? strategy.bakeChecks : strategy.checks(inStage: rollout.stageIndex)
            let ordered = inUse.map(\.name)
            names = ordered + names.filter { !ordered.contains($0) }
        }
        checks = names.map { name in
            let state = rollout.checks[name] ?? CheckState()
            return CheckView(
                name: name, value: state.lastSample?.value, verdict: state.lastSample?.verdict.rawValue,
                time: state.lastSample?.time.rfc3339, reason: state.lastSample?.reason,
                consecutiveBreaches: state.consecutiveBreaches, consecutiveNoData: state.consecutiveNoData,
                explanation: state.lastSample?.explanation)
        }
    }
}

/// The router's side of a rollout: the weight it last read back, since when it has not confirmed the weight
/// Sluice wants, and why the effects fail, if they do.
public struct RouterView: Sendable, Hashable, Codable {
    /// The canary weight the router read back last; nil when it never answered.
    public var weight: Int?
    public var readAt: String?
    /// The router reads back the weight Sluice wants.
    public var confirmed: Bool
    public var unconfirmedSince: String?
    /// Seconds since `unconfirmedSince`, at the time of the answer.
    public var unconfirmedSeconds: Double?
    /// Why the last tick's effects failed, e.g. `setWeight(0) failed: Caddy admin API answered HTTP 500`.
    public var failure: String?

    public init(_ readBack: RouterReadBack, confirmed: Bool, now: Timestamp) {
        weight = readBack.weight
        readAt = readBack.readAt?.rfc3339
        self.confirmed = confirmed
        unconfirmedSince = readBack.unconfirmedSince?.rfc3339
        unconfirmedSeconds = readBack.unconfirmedSince.map { max(0, Double((now - $0).milliseconds) / 1000) }
        failure = readBack.failure
    }
}

/// An event as the API serves it (docs/api.md "Words"): the very type webhooks receive, so the API, the
/// event stream, `sluice events -o json` and notifications share one encoding.
public typealias EventView = EventPayload

/// `GET /v1/strategies`.
public struct StrategyList: Sendable, Codable {
    public var strategies: [StrategyView]
    public init(strategies: [StrategyView]) { self.strategies = strategies }
}

/// `GET /v1/rollouts`.
public struct RolloutList: Sendable, Codable {
    public var rollouts: [RolloutView]
    /// Present when more rollouts follow this page: pass it as `after` for the next one.
    public var next: String?
    public init(rollouts: [RolloutView], next: String? = nil) {
        self.rollouts = rollouts
        self.next = next
    }
}

/// `GET /v1/events` without a stream.
public struct EventList: Sendable, Codable {
    public var events: [EventView]
    /// The highest `seq` returned, or the `after` asked for when none: pass it as `after` next time.
    public var last: Int64
    public init(events: [EventView], last: Int64) {
        self.events = events
        self.last = last
    }
}

extension StrategyKey {
    /// Parses `NAME` or `NAMESPACE/NAME`; nil when empty or with more than one `/`.
    public init?(parsing text: String, defaultNamespace: String = "default") {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 1 where !parts[0].isEmpty: self.init(namespace: defaultNamespace, name: parts[0])
        case 2 where !parts[0].isEmpty && !parts[1].isEmpty: self.init(namespace: parts[0], name: parts[1])
        default: return nil
        }
    }
}
