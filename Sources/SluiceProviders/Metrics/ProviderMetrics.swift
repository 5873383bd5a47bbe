import Foundation

/// Counts and times the queries of metric providers, for `sluice_provider_requests_total{provider,outcome}`
/// and the query latency the API reports. One recorder is shared by every provider of a process.
public final class ProviderMetrics: @unchecked Sendable {
    /// How a query ended.
    public enum Outcome: String, Sendable, Hashable, CaseIterable, Codable {
        case value
        case noData = "no_data"
        case error
    }

    /// Query latency of one provider.
    public struct Latency: Sendable, Hashable {
        public var count: Int
        public var total: Duration
        public var last: Duration
    }

    private let lock = NSLock()  // Mutex draws TSan false positives here (docs/development.md)
    private var requests: [String: [Outcome: Int]] = [:]
    private var latencies: [String: Latency] = [:]

    public init() {}

    /// Records one query of `provider`.
    public func record(provider: String, outcome: Outcome, latency: Duration) {
        lock.lock()
        defer { lock.unlock() }
        requests[provider, default: [:]][outcome, default: 0] += 1
        var entry = latencies[provider] ?? Latency(count: 0, total: .zero, last: .zero)
        entry.count += 1
        entry.total += latency
        entry.last = latency
        latencies[provider] = entry
    }

    /// How many queries of `provider` ended with `outcome`.
    public func requests(provider: String, outcome: Outcome) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return requests[provider]?[outcome] ?? 0
    }

    /// The query latency of `provider`; nil before its first query.
    public func latency(provider: String) -> Latency? {
        lock.lock()
        defer { lock.unlock() }
        return latencies[provider]
    }

    /// Every provider that has been queried, sorted.
    public var providers: [String] {
        lock.lock()
        defer { lock.unlock() }
        return latencies.keys.sorted()
    }

    /// Runs one query of `provider`, records its outcome and latency, and returns what it returned.
    func measure(provider: String, _ query: () async throws -> MetricReading) async throws -> MetricReading {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let reading = try await query()
            record(provider: provider, outcome: reading.value == nil ? .noData : .value, latency: clock.now - start)
            return reading
        } catch {
            record(provider: provider, outcome: .error, latency: clock.now - start)
            throw error
        }
    }
}
