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
    /// A comparison check's four counts for the interval (its `value` is then this interval's e-value alone).
    public var counts: ComparisonCounts? = nil
    /// A threshold check's `minCount` reading.
    public var count: Double? = nil

    /// The thresholds in words, e.g. `<= 0.01`, `>= 0.999`, `>= 0.1 and <= 0.5`.
    public var threshold: String {
        [min.map { ">= \(formatNumber($0))" }, max.map { "<= \(formatNumber($0))" }]
            .compactMap { $0 }.joined(separator: " and ")
    }

    private enum CodingKeys: String, CodingKey {
        case check, provider, query, value, max, min, threshold, verdict, reason, latencySeconds, counts, count
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
        try c.encode(counts, forKey: .counts)
        try c.encode(count, forKey: .count)
    }

    /// This result as the sample the decision core reads.
    public func sample(at time: Timestamp) -> Sample {
        Sample(check: check, time: time, value: value, verdict: verdict, reason: reason, counts: counts, count: count)
    }
}

/// Queries checks against their providers: one reading per check, errors turned into no data with
/// the provider's message as the reason (never into a pass).
public struct CheckRunner: Sendable {
    public let providers: [String: any MetricProvider]

    public init(providers: [String: any MetricProvider]) {
        self.providers = providers
    }

    /// Queries `check` once with `query` (its rendered query; a threshold check without `minCount`).
    public func run(_ check: Check, query: String) async -> CheckResult {
        await run(check, queries: RenderedQueries(value: query))
    }

    /// Queries `check` once with every query of it rendered for `context`: a threshold check's value (and its
    /// `minCount`), or a comparison's four counts, concurrently.
    public func run(_ check: Check, context: TemplateContext) async -> CheckResult {
        await run(check, queries: check.renderedQueries(context))
    }

    private func run(_ check: Check, queries: RenderedQueries) async -> CheckResult {
        let clock = ContinuousClock()
        let start = clock.now
        var result = CheckResult(
            check: check.name, provider: check.provider, query: queries.value, value: nil, max: check.max,
            min: check.min, verdict: .noData, reason: nil, latencySeconds: 0)
        do {
            guard let provider = providers[check.provider] else {
                throw ProviderError(.invalidConfiguration, provider: check.provider, "no provider of this name")
            }
            if let compare = check.compare, let canary = queries.canary, let baseline = queries.baseline {
                try await compareOnce(compare, canary: canary, baseline: baseline, provider: provider, into: &result)
            } else {
                async let count = Self.read(queries.count, from: provider)
                switch try await Self.read(queries.value, from: provider) {
                case .value(let value):
                    result.value = value
                    result.verdict = check.verdict(for: value)
                case .noData(let reason):
                    result.reason = reason
                }
                if case .value(let number)? = try await count { result.count = number }
            }
        } catch {
            result.value = nil
            result.reason = "\(error)"
            result.verdict = .noData
        }
        result.latencySeconds = (clock.now - start).seconds
        return result
    }

    /// The four counts of a comparison; its verdict on this interval alone is what `sluice check` shows
    /// (`decide` adds the interval to the evidence gathered so far and judges that).
    private func compareOnce(
        _ compare: Comparison, canary: ComparisonQueries, baseline: ComparisonQueries, provider: any MetricProvider,
        into result: inout CheckResult
    ) async throws {
        async let canaryEvents = Self.read(canary.events, from: provider)
        async let canaryRequests = Self.read(canary.requests, from: provider)
        async let baselineEvents = Self.read(baseline.events, from: provider)
        async let baselineRequests = Self.read(baseline.requests, from: provider)
        let readings = try await [
            ("canary events", canaryEvents), ("canary requests", canaryRequests),
            ("baseline events", baselineEvents), ("baseline requests", baselineRequests),
        ]
        var numbers: [Double] = []
        for (index, (what, reading)) in readings.enumerated() {
            switch reading {
            case .value(let value): numbers.append(value)
            case .noData(let reason):
                // The canary's series are gone (e.g. its process crashed) while stable's answer: nothing counted
                // for the canary, which `decide` weighs against its traffic share. Stable without data is no-data.
                guard index < 2, case .value = readings[2].1, case .value = readings[3].1 else {
                    result.reason = "\(what): \(reason)"
                    return
                }
                numbers.append(0)
            }
        }
        let counts = ComparisonCounts(
            canaryEvents: numbers[0], canaryRequests: numbers[1], baselineEvents: numbers[2],
            baselineRequests: numbers[3])
        result.counts = counts
        let (evidence, outcome) = compare.judge(counts, evidence: nil, countsForStage: true, at: Timestamp(millisecondsSinceEpoch: 0))
        result.value = evidence.map { compare.test.eValue($0) }
        result.max = compare.test.boundary
        switch outcome {
        case .pass: result.verdict = .pass
        case .breach: result.verdict = .breach
        case .collecting(let why), .noData(let why):
            result.verdict = .noData
            result.reason = why
        case .silent(let why):
            result.verdict = .breach
            result.reason = why
        }
    }

    private static func read(_ query: String?, from provider: any MetricProvider) async throws -> MetricReading? {
        guard let query else { return nil }
        return try await read(query, from: provider) as MetricReading
    }

    private static func read(_ query: String, from provider: any MetricProvider) async throws -> MetricReading {
        if let reader = provider as? any MetricReader { return try await reader.read(query: query) }
        if let value = try await provider.sample(query: query) { return MetricReading(number: value) }
        return .noData(reason: "no data")
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
        return await run(checks, context: context)
    }

    /// Every check with all its queries rendered for `context`, concurrently; results in the order of `checks`.
    public func run(_ checks: [Check], context: TemplateContext) async -> [CheckResult] {
        await withTaskGroup(of: (Int, CheckResult).self) { group in
            for (index, check) in checks.enumerated() {
                group.addTask { (index, await run(check, context: context)) }
            }
            var results = [CheckResult?](repeating: nil, count: checks.count)
            for await (index, result) in group { results[index] = result }
            return results.compactMap { $0 }
        }
    }
}
