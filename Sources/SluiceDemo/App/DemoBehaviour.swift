import Foundation

/// How the demo app misbehaves: the share of requests answered with 500 and the latency added to each.
/// Errors are spread evenly (every 10th request at 0.1), not drawn at random, so a run is repeatable.
public final class DemoBehaviour: @unchecked Sendable {
    /// A change sent to `POST /control`; absent fields stay as they are.
    public struct Change: Codable, Sendable {
        public var errorRate: Double?
        public var latencyMs: Int?
        public init(errorRate: Double? = nil, latencyMs: Int? = nil) {
            self.errorRate = errorRate
            self.latencyMs = latencyMs
        }
    }

    private let lock = NSLock()
    private var errorRate: Double
    private var latencyMs: Int
    private var debt = 0.0

    /// Fails with a message naming the flag when a value is out of range.
    public init(errorRate: Double, latencyMs: Int) throws {
        try Self.check(errorRate: errorRate, latencyMs: latencyMs)
        self.errorRate = errorRate
        self.latencyMs = latencyMs
    }

    static func check(errorRate: Double?, latencyMs: Int?) throws {
        if let errorRate, !(0...1).contains(errorRate) {
            throw DemoError("error rate must be within 0...1, got \(errorRate)")
        }
        if let latencyMs, !(0...60_000).contains(latencyMs) {
            throw DemoError("latency must be within 0...60000 ms, got \(latencyMs)")
        }
    }

    /// Applies `change` after checking it.
    public func apply(_ change: Change) throws {
        try Self.check(errorRate: change.errorRate, latencyMs: change.latencyMs)
        lock.lock()
        defer { lock.unlock() }
        if let rate = change.errorRate { errorRate = rate }
        if let latency = change.latencyMs { latencyMs = latency }
    }

    /// The current settings, as `GET /control` shows them.
    public var current: Change {
        lock.lock()
        defer { lock.unlock() }
        return Change(errorRate: errorRate, latencyMs: latencyMs)
    }

    /// Whether the next request fails, and the latency to add to it.
    func next() -> (fail: Bool, latencyMs: Int) {
        lock.lock()
        defer { lock.unlock() }
        debt += errorRate
        let fail = debt >= 1 - 1e-9
        if fail { debt -= 1 }
        return (fail, latencyMs)
    }
}

/// A bad flag or control request of the demo app.
public struct DemoError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
