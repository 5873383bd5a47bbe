import Foundation
import SluiceController
import SluiceCore
import SluiceHTTP
import SluiceKubernetes
import SluiceProviders

/// The real outside world of a rollout in `sluice serve`: metric providers from the registry, the router
/// of the strategy from `RouterRegistry`, and a `DeploymentWorkload` (or for an `upstreams` target
/// `PoolsHealthWorkload` with a health check, `PoolsWorkload` without). Anything a strategy asks for that cannot
/// be built is thrown, so the controller records it on the rollout; nothing is ever silently skipped.
public struct LiveProviderFactory: ProviderFactory {
    public let metrics: MetricProviderRegistry
    public let http: any HTTPClient
    public let kubernetes: KubernetesClient?
    public let routerMetrics: RouterMetrics
    public let environment: [String: String]
    /// The `upstreams.health` failure streaks of all rollouts, kept across ticks.
    let healthStreaks = HealthStreaks()

    public init(
        metrics: MetricProviderRegistry, http: any HTTPClient,
        kubernetes: KubernetesClient?, routerMetrics: RouterMetrics,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.metrics = metrics
        self.http = http
        self.kubernetes = kubernetes
        self.routerMetrics = routerMetrics
        self.environment = environment
    }

    public func providers(for strategy: Strategy, rollout: Rollout) throws -> RolloutProviders {
        let context = RouterContext(
            namespace: strategy.namespace, pools: rollout.pools, http: http, environment: environment,
            kubernetes: kubernetes)
        let router = try RouterRegistry.router(for: strategy.traffic, context: context)
        let workload: any Workload
        switch strategy.target {
        case .deployment(let name, let container):
            guard let kubernetes else {
                throw ProviderError(
                    .invalidConfiguration, provider: "deployment",
                    "strategy \(strategy.key) targets Deployment \(name), but no Kubernetes cluster is configured "
                        + "(set kubeconfig in the server config, or run in a pod)")
            }
            workload = DeploymentWorkload(client: kubernetes, namespace: strategy.namespace, deployment: name, container: container)
        case .upstreams(_, let declaredCanary, let health):
            let members = rollout.pools?.canary ?? declaredCanary
            if let health {
                workload = PoolsHealthWorkload(
                    members: members, version: rollout.version, health: health,
                    serving: rollout.desiredWeight > 0 && !rollout.phase.isTerminal, rollout: rollout.id, client: http,
                    streaks: healthStreaks)
            } else {
                workload = PoolsWorkload(members: members)
            }
        }
        return RolloutProviders(
            metrics: try metrics.makeProviders(for: strategy.analysis),
            router: CountingRouter(base: router, kind: strategy.traffic.kind, metrics: routerMetrics),
            workload: workload)
    }
}

/// Calls to traffic routers by router kind and outcome, for `sluice_provider_requests_total`.
public final class RouterMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [RuntimeMetrics.ProviderRequestKey: Int] = [:]

    public init() {}

    func record(kind: TrafficRoute.Kind, success: Bool) {
        lock.withLock { values[.init(provider: kind.rawValue, outcome: success ? "success" : "error"), default: 0] += 1 }
    }

    /// Every counter so far.
    public var counts: [RuntimeMetrics.ProviderRequestKey: Int] { lock.withLock { values } }
}

/// A router that counts its calls; everything else is the router it wraps.
struct CountingRouter: TrafficRouter {
    let base: any TrafficRouter
    let kind: TrafficRoute.Kind
    let metrics: RouterMetrics

    func setCanaryWeight(_ weight: Int) async throws { try await counted { try await base.setCanaryWeight(weight) } }
    func canaryWeight() async throws -> Int { try await counted { try await base.canaryWeight() } }
    func finalize() async throws { try await counted { try await base.finalize() } }

    private func counted<T>(_ call: () async throws -> T) async throws -> T {
        do {
            let value = try await call()
            metrics.record(kind: kind, success: true)
            return value
        } catch {
            metrics.record(kind: kind, success: false)
            throw error
        }
    }
}
