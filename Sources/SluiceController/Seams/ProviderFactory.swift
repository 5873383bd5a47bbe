import SluiceCore

/// The outside world of one rollout: its metric providers (by their key in `analysis.providers`), its
/// router and its workload.
public struct RolloutProviders: Sendable {
    public var metrics: [String: any MetricProvider]
    public var router: any TrafficRouter
    public var workload: any Workload

    public init(metrics: [String: any MetricProvider], router: any TrafficRouter, workload: any Workload) {
        self.metrics = metrics
        self.router = router
        self.workload = workload
    }
}

/// Makes the providers of a rollout from its strategy. Called for every tick and every batch of
/// effects with the rollout as it is then, so a router sees the pools in their current roles.
public protocol ProviderFactory: Sendable {
    /// The providers for `rollout` of `strategy`; throws when the strategy's settings cannot be used
    /// (the tick then observes nothing and the effects fail with that message).
    func providers(for strategy: Strategy, rollout: Rollout) throws -> RolloutProviders
}

/// The workload of an `upstreams` target without `health`: the pools already run, so there is nothing to deploy,
/// nothing is checked, and promotion is the swap of pool roles that the rollout itself records. The canary is
/// reported ready at once, and `CanaryDeployed` says the pool was not checked: CI deploys the version to the pool
/// before `rollout start` (docs/strategy.md). `PoolsHealthWorkload` is the checked one.
public struct PoolsWorkload: Workload {
    /// The members of the pool in the canary role, named in the event.
    public let members: [String]

    public init(members: [String] = []) { self.members = members }
    public func deployCanary(version: String, weight: Int) async throws {}
    public func canaryStatus() async throws -> CanaryStatus { .ready }
    public func promote(version: String) async throws {}
    public func scaleDownCanary() async throws {}

    public func canaryReport() async throws -> CanaryReport {
        let pool = members.isEmpty ? "the canary pool" : "canary pool \(members.joined(separator: ", "))"
        return CanaryReport(
            status: .ready,
            evidence: CanaryEvidence(
                checked: false,
                summary: "\(pool) not checked (the strategy has no upstreams.health; "
                    + "CI deploys the version to the pool before `rollout start`)",
                data: ["members": .array(members.map(JSONValue.string))]))
    }
}
