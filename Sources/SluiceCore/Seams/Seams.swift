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

/// A router that can say, from its own view, whether the canary is down (#23.8, docs/judge.md "The router's
/// view"): Caddy's passive health checks, an ALB's target health. Routers without such a view do not conform.
public protocol CanaryHealthReporting: Sendable {
    /// What the router knows of the canary's members now; nil when it has nothing to go by (e.g. a Caddy
    /// handler without passive health checks).
    func canaryHealth() async throws -> RouterCanaryHealth?
}

/// The router's view of the canary: down when it takes every canary member for unhealthy.
public struct RouterCanaryHealth: Sendable, Hashable, Codable {
    public var down: Bool
    /// For people and the rollback's event, e.g. "Caddy's passive health checks count 3 failed requests on
    /// 127.0.0.1:9002 (max_fails 3 within 10s): every canary upstream is down".
    public var summary: String

    public init(down: Bool, summary: String) {
        self.down = down
        self.summary = summary
    }
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
    /// Undoing a confirmed promotion traffic first (a bake's rollback, `PromotionUndo`): run what the stable ran
    /// before `promoted` was promoted as the canary, with capacity for all traffic. Idempotent.
    func deployPreviousCanary(promoted: String) async throws
    /// Give the stable back what it ran before `promoted` was promoted, and return when that has rolled out.
    /// Idempotent.
    func restoreStable(promoted: String) async throws
}

/// A workload asked to undo a promotion it cannot undo (only a Deployment keeps what it ran before; `upstreams`
/// targets undo a promotion by swapping their pools back, which needs no workload).
public struct PromotionUndoUnsupported: Error, CustomStringConvertible {
    public let workload: String
    public var description: String { "\(workload) cannot undo a promotion: it keeps nothing from before it" }
}

extension Workload {
    /// The status alone: a workload whose readiness speaks for itself (a Deployment's availability).
    public func canaryReport() async throws -> CanaryReport { CanaryReport(status: try await canaryStatus()) }

    /// Only a Deployment keeps what it ran before a promotion; `decide` asks no other workload for this.
    public func deployPreviousCanary(promoted: String) async throws {
        throw PromotionUndoUnsupported(workload: "\(Self.self)")
    }

    /// Only a Deployment keeps what it ran before a promotion; `decide` asks no other workload for this.
    public func restoreStable(promoted: String) async throws {
        throw PromotionUndoUnsupported(workload: "\(Self.self)")
    }
}
