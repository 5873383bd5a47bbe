import SluiceCore

/// Calls to traffic routers by router kind and outcome; with `ProviderMetrics` (the metric providers' queries) they
/// make `sluice_provider_requests_total`.
public final class RouterMetrics: Sendable {
    /// How a call ended.
    public enum Outcome: String, Sendable, Hashable, CaseIterable {
        case success, error
    }

    /// The labels of one counter.
    public struct Key: Sendable, Hashable {
        public var router: TrafficRoute.Kind
        public var outcome: Outcome

        public init(router: TrafficRoute.Kind, outcome: Outcome) {
            self.router = router
            self.outcome = outcome
        }
    }

    private let values = Locked<[Key: Int]>([:])

    public init() {}

    /// `router` of kind `kind`, with every call counted here.
    public func counting(_ router: any TrafficRouter, kind: TrafficRoute.Kind) -> any TrafficRouter {
        CountingRouter(base: router, kind: kind, metrics: self)
    }

    /// Every counter so far.
    public var counts: [Key: Int] { values.current }

    func record(_ router: TrafficRoute.Kind, _ outcome: Outcome) {
        values.withLock { $0[Key(router: router, outcome: outcome), default: 0] += 1 }
    }
}

/// A router that counts its calls; everything else is the router it wraps.
struct CountingRouter: TrafficRouter {
    let base: any TrafficRouter
    let kind: TrafficRoute.Kind
    let metrics: RouterMetrics

    func setCanaryWeight(_ weight: Int) async throws { try await counted { try await base.setCanaryWeight(weight) } }
    func canaryWeight() async throws -> Int { try await counted { try await base.canaryWeight() } }
    func finalize() async throws { try await counted { try await base.finalize() } }

    fileprivate func counted<T>(_ call: () async throws -> T) async throws -> T {
        do {
            let value = try await call()
            metrics.record(kind, .success)
            return value
        } catch {
            metrics.record(kind, .error)
            throw error
        }
    }
}

extension CountingRouter: CanaryHealthReporting {
    /// The wrapped router's view of the canary, counted like its other calls; nil when it has none.
    func canaryHealth() async throws -> RouterCanaryHealth? {
        guard let reporter = base as? any CanaryHealthReporting else { return nil }
        return try await counted { try await reporter.canaryHealth() }
    }
}
