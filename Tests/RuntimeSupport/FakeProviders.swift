import Foundation
import SluiceController
import SluiceCore

/// A door that calls wait at while it is closed (a slow provider, on cue); cancellation gets them out.
public final class Gate: @unchecked Sendable {
    private let lock = NSLock()
    private var open = true
    private var waiting: [UInt64: CheckedContinuation<Void, any Error>] = [:]
    private var nextID: UInt64 = 0

    public init(open: Bool = true) { self.open = open }

    /// How many calls are waiting at the gate now.
    public var waiters: Int { lock.withLock { waiting.count } }

    public func close() { lock.withLock { open = false } }

    public func openGate() {
        let all = lock.withLock {
            open = true
            defer { waiting = [:] }
            return Array(waiting.values)
        }
        for continuation in all { continuation.resume() }
    }

    public func pass() async throws {
        let id = lock.withLock {
            nextID += 1
            return nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let proceed = lock.withLock {
                    if open { return true }
                    waiting[id] = continuation
                    return false
                }
                if proceed { continuation.resume() }
            }
        } onCancel: {
            let continuation = lock.withLock { waiting.removeValue(forKey: id) }
            continuation?.resume(throwing: CancellationError())
        }
    }
}

/// The error fake providers throw on cue.
public struct FakeFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A router in memory: remembers every weight it was set to; fails or hangs on cue; can drift by hand.
public final class FakeRouter: TrafficRouter, @unchecked Sendable {
    private let lock = NSLock()
    private var weight = 0
    private var history: [Int] = []
    private var finalized = 0
    private var failuresLeft = 0
    public let gate = Gate()

    public init() {}

    /// The weight the canary has now.
    public var current: Int { lock.withLock { weight } }
    /// Every weight set, in order.
    public var weights: [Int] { lock.withLock { history } }
    public var finalizeCount: Int { lock.withLock { finalized } }

    /// The next `count` weight changes fail.
    public func failNextSets(_ count: Int) { lock.withLock { failuresLeft = count } }

    /// Someone edits the route by hand.
    public func drift(to weight: Int) { lock.withLock { self.weight = weight } }

    public func setCanaryWeight(_ weight: Int) async throws {
        try await gate.pass()
        try lock.withLock {
            if failuresLeft > 0 {
                failuresLeft -= 1
                throw FakeFailure("router answered 503")
            }
            self.weight = weight
            history.append(weight)
        }
    }

    public func canaryWeight() async throws -> Int { lock.withLock { weight } }

    public func finalize() async throws { lock.withLock { finalized += 1 } }

    private var health: RouterCanaryHealth?

    /// What the router says of the canary's members from now on (nil: nothing, as a router without a view).
    public func report(_ health: RouterCanaryHealth?) { lock.withLock { self.health = health } }
}

extension FakeRouter: CanaryHealthReporting {
    public func canaryHealth() async throws -> RouterCanaryHealth? { lock.withLock { health } }
}

/// A metric provider whose answer a test sets: a value, no data, an error; or it hangs at its gate.
public final class FakeMetrics: MetricProvider, @unchecked Sendable {
    public enum Answer: Sendable {
        case value(Double)
        case noData
        case error(String)
    }

    private let lock = NSLock()
    private var answer: @Sendable (String) -> Answer
    private var queries: [String] = []
    public let gate = Gate()

    public init(_ answer: Answer = .value(0.01)) {
        self.answer = { _ in answer }
    }

    /// Every query asked, in order.
    public var asked: [String] { lock.withLock { queries } }

    public func answer(_ answer: Answer) { lock.withLock { self.answer = { _ in answer } } }

    /// Answers through `body`, asked at query time (e.g. breach only while the router is at some weight).
    public func answer(with body: @escaping @Sendable (String) -> Answer) { lock.withLock { answer = body } }

    public func sample(query: String) async throws -> Double? {
        try await gate.pass()
        let answer = lock.withLock {
            queries.append(query)
            return self.answer(query)
        }
        switch answer {
        case .value(let value): return value
        case .noData: return nil
        case .error(let message): throw FakeFailure(message)
        }
    }
}

/// A workload in memory: remembers deployments, promotions and scale-downs; readiness is settable.
public final class FakeWorkload: Workload, @unchecked Sendable {
    private let lock = NSLock()
    private var calls: [String] = []
    private var status: CanaryStatus = .ready
    private var promotionFailuresLeft = 0
    public let gate = Gate()

    public init() {}

    /// The next `count` promotions throw (a rollout then stays in Promoting, retrying).
    public func failNextPromotions(_ count: Int) { lock.withLock { promotionFailuresLeft = count } }

    /// Every call, e.g. `deploy v2 5`, `promote v2`, `scaleDown`.
    public var log: [String] { lock.withLock { calls } }

    public func setStatus(_ status: CanaryStatus) { lock.withLock { self.status = status } }

    public func deployCanary(version: String, weight: Int) async throws {
        lock.withLock { calls.append("deploy \(version) \(weight)") }
    }

    public func canaryStatus() async throws -> CanaryStatus { lock.withLock { status } }

    public func promote(version: String) async throws {
        try await gate.pass()
        try lock.withLock {
            guard promotionFailuresLeft == 0 else {
                promotionFailuresLeft -= 1
                throw FakeFailure("promotion refused")
            }
            calls.append("promote \(version)")
        }
    }

    public func scaleDownCanary() async throws { lock.withLock { calls.append("scaleDown") } }
}

/// One strategy's outside world in memory.
public final class FakeWorld: Sendable {
    public let router = FakeRouter()
    public let metrics = FakeMetrics()
    public let workload = FakeWorkload()
    public init() {}
}

/// Gives every rollout of a strategy that strategy's `FakeWorld` (made on first use), with the one
/// metric provider under every provider key of the strategy.
public final class FakeProviderFactory: ProviderFactory, @unchecked Sendable {
    private let lock = NSLock()
    private var worlds: [StrategyKey: FakeWorld] = [:]

    public init() {}

    public func world(_ key: StrategyKey) -> FakeWorld {
        lock.withLock {
            if let world = worlds[key] { return world }
            let world = FakeWorld()
            worlds[key] = world
            return world
        }
    }

    public func providers(for strategy: Strategy, rollout: Rollout) throws -> RolloutProviders {
        let world = world(strategy.key)
        return RolloutProviders(
            metrics: strategy.analysis.providers.mapValues { _ in world.metrics as any MetricProvider },
            router: world.router, workload: world.workload)
    }
}
