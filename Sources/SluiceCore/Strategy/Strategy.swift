/// A validated strategy (docs/strategy.md): what is rolled out, how traffic is split,
/// the stages and the checks that must hold. Only `StrategyLoader` builds one from YAML; every
/// value here has passed validation, so the rest of Sluice never re-checks it.
public struct Strategy: Sendable, Hashable, Codable {
    public var name: String
    public var namespace: String
    public var labels: [String: String]
    public var target: Target
    public var traffic: TrafficRoute
    public var stages: [Stage]
    public var analysis: Analysis
    public var rollback: RollbackPolicy
    public var notifications: [NotificationTarget]
    /// `spec.bake`: how long the checks keep watching the new version after promotion; nil ends at promotion.
    public var bake: Bake? = nil

    public init(
        name: String, namespace: String = "default", labels: [String: String] = [:], target: Target,
        traffic: TrafficRoute, stages: [Stage], analysis: Analysis, rollback: RollbackPolicy = .init(),
        notifications: [NotificationTarget] = [], bake: Bake? = nil
    ) {
        self.bake = bake
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.target = target
        self.traffic = traffic
        self.stages = stages
        self.analysis = analysis
        self.rollback = rollback
        self.notifications = notifications
    }

    /// `namespace/name`, the key a strategy is stored and addressed by.
    public var key: StrategyKey { StrategyKey(namespace: namespace, name: name) }

    /// The checks that apply in stage `index`: the analysis checks, then the stage's own.
    public func checks(inStage index: Int) -> [Check] {
        guard stages.indices.contains(index) else { return analysis.checks }
        return analysis.checks + stages[index].checks
    }
}

/// `namespace/name` of a strategy.
public struct StrategyKey: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }
    public var description: String { "\(namespace)/\(name)" }
    public static func < (a: StrategyKey, b: StrategyKey) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }
}

/// What a rollout changes: a Kubernetes Deployment, or two pools behind a load balancer.
public enum Target: Sendable, Hashable, Codable {
    /// The stable Deployment in the strategy's namespace; Sluice owns `<deployment>-canary`.
    case deployment(name: String, container: String?)
    /// Pools of `host:port` that already run; Sluice shifts traffic only and swaps roles on promotion. With
    /// `health`, every member of the pool in the canary role is probed before traffic shifts and while it serves.
    case upstreams(stable: [String], canary: [String], health: HealthCheck? = nil)
}

/// `target.upstreams.health`: an HTTP probe of every member of the pool in the canary role.
public struct HealthCheck: Sendable, Hashable, Codable {
    /// `http` or `https`.
    public var scheme: String
    /// The path (and query) probed on each member, e.g. `/healthz`.
    public var path: String
    /// The status every member must answer.
    public var expect: Int
    /// How long one probe of one member may take.
    public var timeout: Duration
    /// Where each member says which version it runs; it must equal the rollout's version.
    public var version: VersionProbe?
    /// Consecutive failing observations of a member, while the canary serves traffic, that fail the canary.
    public var failureThreshold: Int

    public init(
        scheme: String = "http", path: String, expect: Int = 200, timeout: Duration = .seconds(2),
        version: VersionProbe? = nil, failureThreshold: Int = 3
    ) {
        self.scheme = scheme
        self.path = path
        self.expect = expect
        self.timeout = timeout
        self.version = version
        self.failureThreshold = failureThreshold
    }
}

/// `health.version`: where a member's answer names its version.
public enum VersionProbe: Sendable, Hashable, Codable {
    /// A response header, e.g. `X-Version`.
    case header(String)
    /// A dotted path into the JSON body, e.g. `build.version`.
    case jsonPath(String)
}

/// The one router of a strategy and its settings.
public enum TrafficRoute: Sendable, Hashable, Codable {
    case gatewayAPI(httpRoute: String, stableService: String, canaryService: String)
    case nginxIngress(ingress: String, canaryService: String)
    case caddy(adminURL: String, handlerID: String)
    case awsALB(ALBRoute)

    /// A router by its key in the strategy file, in the order the reader lists them.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case gatewayAPI, nginxIngress, caddy, awsALB
    }

    /// Which router this is.
    public var kind: Kind {
        switch self {
        case .gatewayAPI: .gatewayAPI
        case .nginxIngress: .nginxIngress
        case .caddy: .caddy
        case .awsALB: .awsALB
        }
    }
}

/// `traffic.awsALB`.
public struct ALBRoute: Sendable, Hashable, Codable {
    public var region: String
    public var listenerARN: String
    public var stableTargetGroupARN: String
    public var canaryTargetGroupARN: String
    /// Overrides the regional ELBv2 endpoint (moto, private endpoints).
    public var endpoint: String?
    public init(
        region: String, listenerARN: String, stableTargetGroupARN: String, canaryTargetGroupARN: String,
        endpoint: String? = nil
    ) {
        self.region = region
        self.listenerARN = listenerARN
        self.stableTargetGroupARN = stableTargetGroupARN
        self.canaryTargetGroupARN = canaryTargetGroupARN
        self.endpoint = endpoint
    }
}

/// One weighted step of a rollout.
public struct Stage: Sendable, Hashable, Codable {
    public var name: String
    /// Canary weight in percent, 1...100.
    public var weight: Int
    /// How long the stage must stay healthy; nil when `pause` is true.
    public var hold: Duration?
    /// Wait for `sluice promote` instead of a hold.
    public var pause: Bool
    /// Checks that apply in this stage only.
    public var checks: [Check]

    public init(name: String, weight: Int, hold: Duration? = nil, pause: Bool = false, checks: [Check] = []) {
        self.name = name
        self.weight = weight
        self.hold = hold
        self.pause = pause
        self.checks = checks
    }
}

/// What to do when a check has had no data for `noDataLimit` samples.
public enum NoDataAction: String, Sendable, Hashable, Codable, CaseIterable {
    case pause
    case rollback
}

/// `spec.analysis`.
public struct Analysis: Sendable, Hashable, Codable {
    public var interval: Duration
    public var failureLimit: Int
    public var noDataLimit: Int
    public var onNoData: NoDataAction
    public var providers: [String: ProviderConfig]
    public var checks: [Check]

    public init(
        interval: Duration = .seconds(10), failureLimit: Int = 1, noDataLimit: Int = 6,
        onNoData: NoDataAction = .pause, providers: [String: ProviderConfig] = [:], checks: [Check] = []
    ) {
        self.interval = interval
        self.failureLimit = failureLimit
        self.noDataLimit = noDataLimit
        self.onNoData = onNoData
        self.providers = providers
        self.checks = checks
    }
}

/// A metric provider's settings, decoded and validated per kind.
public enum ProviderConfig: Sendable, Hashable, Codable {
    case prometheus(PrometheusConfig)
    case web(WebConfig)

    /// A provider by its key in the strategy file.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case prometheus, web
    }

    /// Which provider this is.
    public var kind: Kind {
        switch self {
        case .prometheus: .prometheus
        case .web: .web
        }
    }
}

/// `providers.X.prometheus`.
public struct PrometheusConfig: Sendable, Hashable, Codable {
    public var address: String
    public var timeout: Duration
    public var headers: [String: HeaderValue]
    public var bearerTokenFile: String?
    public init(
        address: String, timeout: Duration = .seconds(5), headers: [String: HeaderValue] = [:],
        bearerTokenFile: String? = nil
    ) {
        self.address = address
        self.timeout = timeout
        self.headers = headers
        self.bearerTokenFile = bearerTokenFile
    }
}

/// `providers.X.web`: GET `url`, a number at the dotted `jsonPath`.
public struct WebConfig: Sendable, Hashable, Codable {
    public var url: String
    public var jsonPath: String
    public var headers: [String: HeaderValue]
    public var timeout: Duration
    public init(url: String, jsonPath: String, headers: [String: HeaderValue] = [:], timeout: Duration = .seconds(5)) {
        self.url = url
        self.jsonPath = jsonPath
        self.headers = headers
        self.timeout = timeout
    }
}

/// One health check: a query and its threshold(s), at least one of `max` and `min`; or a comparison of the
/// canary with the stable baseline (`compare`, Check+Comparison.swift), which has no threshold.
public struct Check: Sendable, Hashable, Codable {
    public var name: String
    /// The provider's key in `analysis.providers` (resolved during validation when omitted).
    public var provider: String
    /// The query with `{{...}}` templates still in it; see `renderedQuery`. For a comparison: the canary's
    /// events query (what `sluice check` shows first).
    public var query: String
    public var max: Double?
    public var min: Double?
    /// A window in which this count is below its minimum is no-data (threshold checks only).
    public var minCount: MinCount?
    /// A comparison with the stable baseline instead of a threshold.
    public var compare: Comparison?

    public init(
        name: String, provider: String, query: String, max: Double? = nil, min: Double? = nil,
        minCount: MinCount? = nil
    ) {
        self.name = name
        self.provider = provider
        self.query = query
        self.max = max
        self.min = min
        self.minCount = minCount
    }

    /// A comparison check.
    public init(name: String, provider: String, compare: Comparison) {
        self.init(name: name, provider: provider, query: compare.canary.events)
        self.compare = compare
    }

    /// The verdict of one value against this check's thresholds; for a comparison the value is its e-value,
    /// which breaches at 1/alpha (`decide` judges comparisons from their counts, never from this value alone).
    public func verdict(for value: Double) -> SampleVerdict {
        if let compare { return value >= compare.test.boundary ? .breach : .pass }
        if let max, value > max { return .breach }
        if let min, value < min { return .breach }
        return .pass
    }
}

/// `spec.rollback`.
/// `spec.bake` (docs/strategy.md): after promotion the new version serves all traffic while the threshold checks of
/// the last stage keep running for `duration`; a breach swaps the pools back (docs/decide.md "Baking").
public struct Bake: Sendable, Hashable, Codable {
    /// How long the new version is watched at 100 % before the rollout succeeds.
    public var duration: Duration
    public init(duration: Duration) { self.duration = duration }
}

public struct RollbackPolicy: Sendable, Hashable, Codable {
    /// false turns a breach into a pause for a human.
    public var automatic: Bool
    public init(automatic: Bool = true) { self.automatic = automatic }
}

/// A webhook that receives events of the listed types as JSON.
public struct NotificationTarget: Sendable, Hashable, Codable {
    public var webhook: String
    /// Event types to send; empty means every event.
    public var on: [String]
    public init(webhook: String, on: [String] = []) {
        self.webhook = webhook
        self.on = on
    }
}

/// The values `{{...}}` tokens in a query are replaced with.
public struct TemplateContext: Sendable, Hashable {
    public var name: String
    public var namespace: String
    public var stable: String
    public var canary: String
    public var version: String
    public var interval: Duration
    /// `{{le}}`: the histogram bucket bound of a latency comparison's query (Check+Comparison.swift); nil elsewhere.
    public var le: String? = nil

    public init(name: String, namespace: String, stable: String, canary: String, version: String, interval: Duration) {
        self.name = name
        self.namespace = namespace
        self.stable = stable
        self.canary = canary
        self.version = version
        self.interval = interval
    }

    /// The tokens a query may use, without braces.
    public static let tokens = ["name", "namespace", "stable", "canary", "version", "interval"]
}
