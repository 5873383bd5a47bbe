import Foundation
import SluiceCore

/// The outcome of querying one check once: what was asked, what came back, the verdict, and how
/// long it took. `sluice check` prints these; the controller turns one into a `Sample`.
public struct CheckResult: Sendable, Hashable, Encodable {
    public var check: String
    public var provider: String
    /// The query as sent, templates filled in.
    public var query: String
    /// The value; nil for no data.
    public var value: Double?
    public var max: Double?
    public var min: Double?
    public var verdict: SampleVerdict
    /// Why there is no data: the provider's own message, or what was empty.
    public var reason: String?
    /// How long the query took, in seconds.
    public var latencySeconds: Double

    /// The thresholds in words, e.g. `<= 0.01`, `>= 0.999`, `>= 0.1 and <= 0.5`.
    public var threshold: String {
        [min.map { ">= \(formatNumber($0))" }, max.map { "<= \(formatNumber($0))" }]
            .compactMap { $0 }.joined(separator: " and ")
    }

    private enum CodingKeys: String, CodingKey {
        case check, provider, query, value, max, min, threshold, verdict, reason, latencySeconds
    }

    /// Every key, with null where there is nothing, so scripts need not guess what is missing.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(check, forKey: .check)
        try c.encode(provider, forKey: .provider)
        try c.encode(query, forKey: .query)
        try c.encode(value, forKey: .value)
        try c.encode(max, forKey: .max)
        try c.encode(min, forKey: .min)
        try c.encode(threshold, forKey: .threshold)
        try c.encode(verdict, forKey: .verdict)
        try c.encode(reason, forKey: .reason)
        try c.encode(latencySeconds, forKey: .latencySeconds)
    }

    /// This result as the sample the decision core reads.
    public func sample(at time: Timestamp) -> Sample {
        Sample(check: check, time: time, value: value, verdict: verdict, reason: reason)
    }
}

/// Queries checks against their providers: one reading per check, errors turned into no data with
/// the provider's message as the reason (never into a pass).
public struct CheckRunner: Sendable {
    public let providers: [String: any MetricProvider]

    public init(providers: [String: any MetricProvider]) {
        self.providers = providers
    }

    /// Queries `check` once with `query` (its rendered query).
    public func run(_ check: Check, query: String) async -> CheckResult {
        let clock = ContinuousClock()
        let start = clock.now
        var result = CheckResult(
            check: check.name, provider: check.provider, query: query, value: nil, max: check.max, min: check.min,
            verdict: .noData, reason: nil, latencySeconds: 0)
        do {
            guard let provider = providers[check.provider] else {
                throw ProviderError(.invalidConfiguration, provider: check.provider, "no provider of this name")
            }
            let reading: MetricReading
            if let reader = provider as? any MetricReader {
                reading = try await reader.read(query: query)
            } else if let value = try await provider.sample(query: query) {
                reading = MetricReading(number: value)
            } else {
                reading = .noData(reason: "no data")
            }
            switch reading {
            case .value(let value):
                result.value = value
                result.verdict = check.verdict(for: value)
            case .noData(let reason):
                result.reason = reason
            }
        } catch {
            result.reason = "\(error)"
        }
        result.latencySeconds = (clock.now - start).seconds
        return result
    }

    /// Queries every check concurrently; results come back in the order of `checks`.
    public func run(_ checks: [(check: Check, query: String)]) async -> [CheckResult] {
        await withTaskGroup(of: (Int, CheckResult).self) { group in
            for (index, item) in checks.enumerated() {
                group.addTask { (index, await run(item.check, query: item.query)) }
            }
            var results = [CheckResult?](repeating: nil, count: checks.count)
            for await (index, result) in group { results[index] = result }
            return results.compactMap { $0 }
        }
    }
}

extension Duration {
    /// This duration in seconds, as a Double.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// `value` with up to 6 significant digits (`0.0123`, `0.495`, `1.2e-05`), for tables and messages.
public func formatNumber(_ value: Double) -> String {
    String(format: "%.6g", value)
}

extension TemplateContext {
    /// The values a strategy's queries are rendered with when its checks run for `version`: the
    /// stable and canary Deployment names (`<deployment>-canary`), or for `upstreams` targets the
    /// pools' `host:port` lists joined with `|`, ready for a regex matcher (`instance=~"{{canary}}"`).
    public static func forChecks(of strategy: Strategy, version: String) -> TemplateContext {
        let stable: String
        let canary: String
        switch strategy.target {
        case .deployment(let name, _):
            stable = name
            canary = name + "-canary"
        case .upstreams(let stablePool, let canaryPool, _):
            stable = stablePool.joined(separator: "|")
            canary = canaryPool.joined(separator: "|")
        }
        return TemplateContext(
            name: strategy.name, namespace: strategy.namespace, stable: stable, canary: canary, version: version,
            interval: strategy.analysis.interval)
    }
}

extension CheckRunner {
    /// Every check of `strategy` once, now: the analysis checks, plus those of stage `stage` when
    /// given, each query rendered for `version`.
    public func run(_ strategy: Strategy, stage: Int? = nil, version: String) async -> [CheckResult] {
        let context = TemplateContext.forChecks(of: strategy, version: version)
        let checks = stage.map { strategy.checks(inStage: $0) } ?? strategy.analysis.checks
        return await run(checks.map { ($0, $0.renderedQuery(context)) })
    }
}
