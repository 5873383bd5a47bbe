/// The seams between the controller and the outside world. Implementations live in
/// SluiceProviders and SluiceKubernetes; tests use `Fake…`, `Recording…` and `Failing…` doubles.

/// Answers one check's query with one number.
public protocol MetricProvider: Sendable {
    /// One instant sample of `query` (templates already rendered). Returns nil when the provider
    /// answered with no data (empty result, NaN, ±Inf). Throws on any provider error; the caller
    /// records the error and counts the sample as no-data, never as a pass.
    func sample(query: String) async throws -> Double?
}

/// Splits traffic between stable and canary. Weights are absolute: stable = 100 - canary.
public protocol TrafficRouter: Sendable {
    /// Send `weight` percent (0...100) to the canary and the rest to stable.
    func setCanaryWeight(_ weight: Int) async throws
    /// The canary weight the route has now, read back from the router (drift shows here).
    func canaryWeight() async throws -> Int
    /// Remove whatever the router created for a rollout; traffic must already be where it belongs.
    func finalize() async throws
}

/// The thing being rolled out: a Deployment, or pools that need no deployment.
public protocol Workload: Sendable {
    /// Create or update the canary with `version`, scaled for `weight` percent. Idempotent.
    func deployCanary(version: String, weight: Int) async throws
    /// Whether the canary can take its traffic now.
    func canaryStatus() async throws -> CanaryStatus
    /// Make `version` the stable version and return when it is done. Idempotent.
    func promote(version: String) async throws
    /// Scale the canary to zero. Idempotent.
    func scaleDownCanary() async throws
    /// `canaryStatus()` with what was verified to reach it, in one observation (the controller calls this one).
    func canaryReport() async throws -> CanaryReport
}

extension Workload {
    /// The status alone: a workload whose readiness speaks for itself (a Deployment's availability).
    public func canaryReport() async throws -> CanaryReport { CanaryReport(status: try await canaryStatus()) }
}
