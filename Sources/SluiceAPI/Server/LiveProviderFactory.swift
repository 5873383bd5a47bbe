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
    /// The AWS credential chain of every ALB router, kept across ticks: web identity (IRSA) or instance metadata
    /// credentials are fetched once and renewed before they expire, not fetched again for each tick's router.
    let awsCredentials: AWSCredentialChainCache

    public init(
        metrics: MetricProviderRegistry, routerMetrics: RouterMetrics, http: any HTTPClient,
        kubernetes: KubernetesClient?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.metrics = metrics
        self.http = http
        self.kubernetes = kubernetes
        self.routerMetrics = routerMetrics
        self.environment = environment
        self.awsCredentials = AWSCredentialChainCache(environment: environment, http: http)
    }

    public func providers(for strategy: Strategy, rollout: Rollout) throws -> RolloutProviders {
        let context = RouterContext(
            namespace: strategy.namespace, pools: rollout.pools, http: http, environment: environment,
            kubernetes: kubernetes, awsCredentials: awsCredentials)
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
            // Only a bake undoes a promotion, so only then does the promotion keep the template it replaces.
            workload = DeploymentWorkload(
                client: kubernetes, namespace: strategy.namespace, deployment: name, container: container,
                options: .init(keepPreviousTemplate: strategy.bake != nil))
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
            router: routerMetrics.counting(router, kind: strategy.traffic.kind),
            workload: workload)
    }
}
