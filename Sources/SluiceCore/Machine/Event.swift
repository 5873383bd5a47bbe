/// An append-only record of something that happened to a rollout (docs/api.md "Words").
///
/// `decide` returns events with `seq == 0`; the store assigns the global, strictly increasing `seq`
/// in the same transaction that stores the state they explain.
public struct Event: Sendable, Hashable, Codable {
    public var seq: Int64
    public var time: Timestamp
    public var rollout: String
    public var strategy: StrategyKey
    public var type: EventType
    /// The stage index the rollout was in, when it matters.
    public var stage: Int?
    /// The canary weight after the event, when it matters.
    public var weight: Int?
    /// `controller`, or the name of the token that caused it.
    public var actor: String
    public var reason: String?
    public var message: String
    public var data: [String: JSONValue]
    /// The id of the API request that caused it (`X-Request-Id`); nil for what Sluice did on its own.
    public var requestID: String? = nil
    /// The W3C `traceparent` of the span that recorded it (an API request's, a tick's), whose trace id is the
    /// second field; nil when tracing is off.
    public var traceparent: String? = nil

    public init(
        seq: Int64 = 0, time: Timestamp, rollout: String, strategy: StrategyKey, type: EventType, stage: Int? = nil,
        weight: Int? = nil, actor: String = Event.controller, reason: String? = nil, message: String,
        data: [String: JSONValue] = [:]
    ) {
        self.seq = seq
        self.time = time
        self.rollout = rollout
        self.strategy = strategy
        self.type = type
        self.stage = stage
        self.weight = weight
        self.actor = actor
        self.reason = reason
        self.message = message
        self.data = data
    }

    /// The actor of everything Sluice does on its own.
    public static let controller = "controller"
}

/// Event types, named for what happened, in the past tense. Stored and served as their raw value.
public struct EventType: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    public static let rolloutStarted = EventType("RolloutStarted")
    public static let canaryDeployed = EventType("CanaryDeployed")
    public static let stageStarted = EventType("StageStarted")
    public static let trafficShifted = EventType("TrafficShifted")
    public static let stageCompleted = EventType("StageCompleted")
    public static let checkBreached = EventType("CheckBreached")
    public static let checkRecovered = EventType("CheckRecovered")
    public static let checkNoData = EventType("CheckNoData")
    public static let providerError = EventType("ProviderError")
    public static let paused = EventType("Paused")
    public static let resumed = EventType("Resumed")
    public static let promotionRequested = EventType("PromotionRequested")
    public static let promoting = EventType("Promoting")
    public static let promoted = EventType("Promoted")
    /// The promotion was confirmed and the checks keep watching the new version for `spec.bake.duration`.
    public static let bakeStarted = EventType("BakeStarted")
    public static let rollbackStarted = EventType("RollbackStarted")
    public static let rolledBack = EventType("RolledBack")
    public static let superseded = EventType("Superseded")
    public static let failed = EventType("Failed")
    public static let driftDetected = EventType("DriftDetected")
    public static let driftCorrected = EventType("DriftCorrected")
    public static let effectFailed = EventType("EffectFailed")
    /// `promoteStable` was confirmed: the new version is the stable one (Deployment patched or pools swapped).
    public static let stablePromoted = EventType("StablePromoted")
    /// A bake's rollback gave the stable Deployment back the pod template it had before the promotion.
    public static let stableRestored = EventType("StableRestored")

    /// Every type Sluice writes. The dashboard listens to the event stream for each by name (an SSE listener per
    /// type), so a type missing from its list is never seen live: DashboardListsTests keeps app.js in step.
    public static let all: [EventType] = [
        .rolloutStarted, .canaryDeployed, .stageStarted, .trafficShifted, .stageCompleted, .checkBreached,
        .checkRecovered, .checkNoData, .providerError, .paused, .resumed, .promotionRequested, .promoting, .promoted,
        .bakeStarted, .rollbackStarted, .rolledBack, .superseded, .failed, .driftDetected, .driftCorrected,
        .effectFailed, .stablePromoted, .stableRestored,
    ]
}

extension Event {
    /// The trace id of the event's `traceparent` (`VERSION-TRACEID-SPANID-FLAGS`): the 32 characters after the
    /// version; nil without one.
    public var traceID: String? { traceparent.map { String($0.dropFirst(3).prefix(32)) } }

    /// Whether `text` is a trace id as W3C writes it: 32 lowercase hex digits, not all zero.
    public static func isTraceID(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
            && text.utf8.contains { $0 != 0x30 }
    }
}
