/// `compare:` checks and `minCount` (docs/strategy.md "Comparison checks", docs/judge.md): a check that judges the
/// canary against the stable baseline with an anytime-valid sequential test instead of a fixed threshold.
public struct Comparison: Sendable, Hashable, Codable {
    /// What is compared.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// Errors per request: the canary's rate may exceed the baseline's by at most `maxIncrease` (relative).
        case rate
        /// Latency from histogram buckets: the canary may be slower than the baseline by at most `maxIncrease`.
        case latency
        /// Good answers per request, higher is better (accuracy): the canary's rate may be lower than the
        /// baseline's by at most `maxIncrease` (relative, written `maxDecrease`): a drop is the regression.
        case quality

        /// The key of a side's events query: `errors`, `slower` or `good`.
        public var eventsKey: String {
            switch self {
            case .rate: "errors"
            case .latency: "slower"
            case .quality: "good"
            }
        }

        /// The key of the tolerance: `maxDecrease` for `quality`, `maxIncrease` otherwise.
        public var toleranceKey: String { self == .quality ? "maxDecrease" : "maxIncrease" }
    }

    public var kind: Kind
    /// The canary's counts over one interval.
    public var canary: ComparisonQueries
    /// The stable baseline's counts over the same interval.
    public var baseline: ComparisonQueries
    /// `rate`: the allowed relative increase of the error rate (0.2 = 20 %). `latency`: the allowed shift in seconds.
    /// `quality`: the allowed relative decrease of the good rate (0.05 = 5 %; `maxDecrease` in the file), below 1.
    public var maxIncrease: Double
    /// `latency`: the baseline's bound in seconds; a canary request is slow above `slowerThan + maxIncrease`.
    public var slowerThan: Double?
    /// The false-alarm probability the test keeps, however often it looks (default 0.01).
    public var alpha: Double
    /// Canary requests the current stage must have seen before the check can pass (default 100).
    public var minRequests: Double

    public init(
        kind: Kind, canary: ComparisonQueries, baseline: ComparisonQueries, maxIncrease: Double,
        slowerThan: Double? = nil, alpha: Double = Comparison.defaultAlpha,
        minRequests: Double = Comparison.defaultMinRequests
    ) {
        self.kind = kind
        self.canary = canary
        self.baseline = baseline
        self.maxIncrease = maxIncrease
        self.slowerThan = slowerThan
        self.alpha = alpha
        self.minRequests = minRequests
    }

    public static let defaultAlpha = 0.01
    public static let defaultMinRequests = 100.0

    /// The rate ratio the test treats as still acceptable: canary over baseline, `1 + maxIncrease` for `rate`;
    /// 1 for `latency`, whose tolerance lies in the buckets compared (`{{le}}` is `slowerThan + maxIncrease` for
    /// the canary and `slowerThan` for the baseline); for `quality`, baseline over canary (the test runs the
    /// other way round: stable's good answers coming faster than the canary's is the regression),
    /// `1 / (1 - maxDecrease)`.
    public var nullRatio: Double {
        switch kind {
        case .rate: 1 + maxIncrease
        case .latency: 1
        case .quality: 1 / (1 - maxIncrease)
        }
    }

    /// The sequential test this comparison runs.
    public var test: RateRatioTest { RateRatioTest(nullRatio: nullRatio, alpha: alpha, reversed: kind == .quality) }

    /// The `{{le}}` bucket bound for the canary's and the baseline's queries (`latency` only), in seconds as
    /// Prometheus writes `le` labels (`0.3`, `1`).
    public func bucketBound(forCanary canary: Bool) -> String? {
        guard kind == .latency, let slowerThan else { return nil }
        // Whole milliseconds, so 0.25 + 0.05 prints 0.3, not 0.30000000000000004.
        let milliseconds = (slowerThan * 1000).rounded() + (canary ? (maxIncrease * 1000).rounded() : 0)
        let seconds = milliseconds / 1000
        return seconds == seconds.rounded() ? String(Int64(seconds)) : "\(seconds)"
    }
}

/// One side's queries: events (errors, or requests slower than the bound) and requests, as counts over the
/// interval (`increase(...[{{interval}}])`).
public struct ComparisonQueries: Sendable, Hashable, Codable {
    public var events: String
    public var requests: String
    public init(events: String, requests: String) {
        self.events = events
        self.requests = requests
    }
}

/// `minCount` of a threshold check: a window in which `query` counts fewer than `min` (e.g. requests) is
/// no-data, not a pass or a breach.
public struct MinCount: Sendable, Hashable, Codable {
    public var query: String
    public var min: Double
    public init(query: String, min: Double) {
        self.query = query
        self.min = min
    }
}

/// The rendered queries of one check, as a provider receives them.
public struct RenderedQueries: Sendable, Hashable {
    /// The threshold query (for a comparison: the canary's events query, for display).
    public var value: String
    /// `minCount.query`, rendered.
    public var count: String?
    public var canary: ComparisonQueries?
    public var baseline: ComparisonQueries?

    public init(
        value: String, count: String? = nil, canary: ComparisonQueries? = nil, baseline: ComparisonQueries? = nil
    ) {
        self.value = value
        self.count = count
        self.canary = canary
        self.baseline = baseline
    }
}

extension Check {
    /// Every query of this check with its `{{...}}` templates filled in; `{{le}}` of a latency comparison is
    /// the canary's or the baseline's bucket bound.
    public func renderedQueries(_ context: TemplateContext) -> RenderedQueries {
        var rendered = RenderedQueries(value: renderedQuery(context), count: minCount.map { QueryTemplate.render($0.query, context) })
        if let compare {
            func side(_ queries: ComparisonQueries, canary: Bool) -> ComparisonQueries {
                var context = context
                context.le = compare.bucketBound(forCanary: canary)
                return ComparisonQueries(
                    events: QueryTemplate.render(queries.events, context),
                    requests: QueryTemplate.render(queries.requests, context))
            }
            rendered.canary = side(compare.canary, canary: true)
            rendered.baseline = side(compare.baseline, canary: false)
            rendered.value = rendered.canary?.events ?? rendered.value
        }
        return rendered
    }
}
