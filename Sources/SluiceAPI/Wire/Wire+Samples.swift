import SluiceCore

/// `GET /v1/rollouts/{id}/samples`.
public struct SampleList: Sendable, Hashable, Codable {
    public var rollout: String
    public var checks: [CheckSamplesView]
}

/// One check's threshold and its recent samples, oldest first (the store keeps the newest few hundred).
public struct CheckSamplesView: Sendable, Hashable, Codable {
    public var name: String
    /// A value above `max` (or below `min`) is a breach; both nil for a comparison check.
    public var max: Double?
    public var min: Double?
    /// `rate` or `latency` for a comparison with the stable baseline; its samples' values are e-values.
    public var compare: String?
    public var samples: [SampleView]

    public init(name: String, check: Check?, samples: [Sample]) {
        self.name = name
        max = check?.max
        min = check?.min
        compare = check?.compare?.kind.rawValue
        self.samples = samples.map(SampleView.init)
    }
}

/// One sample of a check.
public struct SampleView: Sendable, Hashable, Codable {
    public var time: String
    public var value: Double?
    /// `pass`, `breach` or `no-data`.
    public var verdict: String
    public var reason: String?
    /// How the verdict was reached, e.g. a comparison's counts and e-value.
    public var explanation: String?

    public init(_ sample: Sample) {
        time = sample.time.rfc3339
        value = sample.value
        verdict = sample.verdict.rawValue
        reason = sample.reason
        explanation = sample.explanation
    }
}
