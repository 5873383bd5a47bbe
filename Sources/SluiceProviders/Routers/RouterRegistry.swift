import SluiceCore
import SluiceHTTP
import SluiceKubernetes

/// What a router needs besides its own settings in the strategy.
public struct RouterContext: Sendable {
    /// The strategy's namespace (Kubernetes routers).
    public var namespace: String
    /// The pools in their roles for this rollout, for an `upstreams` target.
    public var pools: Pools?
    /// The one outbound HTTP client.
    public var http: any HTTPClient
    /// Where AWS credentials are looked up (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, `HOME`...).
    public var environment: [String: String]
    /// The cluster of the Gateway API and NGINX Ingress routers; nil when Sluice runs without one.
    public var kubernetes: KubernetesClient?
    /// The AWS credential chain every ALB router of the process shares (`sluice serve` keeps one); nil: each
    /// ALB router resolves `environment`'s chain for itself.
    public var awsCredentials: AWSCredentialChainCache?

    public init(
        namespace: String = "default", pools: Pools? = nil, http: any HTTPClient, environment: [String: String],
        kubernetes: KubernetesClient? = nil, awsCredentials: AWSCredentialChainCache? = nil
    ) {
        self.namespace = namespace
        self.pools = pools
        self.http = http
        self.environment = environment
        self.kubernetes = kubernetes
        self.awsCredentials = awsCredentials
    }
}

extension RouterContext {
    /// The cluster a Kubernetes router of `kind` works in; an error saying so when none is configured.
    func kubernetes(for kind: TrafficRoute.Kind) throws -> KubernetesClient {
        guard let kubernetes else {
            throw ProviderError(
                .invalidConfiguration, provider: kind.rawValue,
                "the '\(kind.rawValue)' router needs a Kubernetes cluster, and none is configured (kubeconfig or in-cluster)")
        }
        return kubernetes
    }
}

/// Every router Sluice has, one line each, keyed by the strategy's `TrafficRoute` case. A case without its line
/// does not compile, and each line is handed exactly its own case's settings: no route can reach the wrong router,
/// and no strategy can name a router that is not here. Adding a router: docs/architecture.md, "Add a router".
public enum RouterRegistry {
    /// The router for `route`; throws `ProviderError.invalidConfiguration` on settings it cannot use.
    public static func router(for route: TrafficRoute, context: RouterContext) throws -> any TrafficRouter {
        switch route {
        case .gatewayAPI(let httpRoute, let stable, let canary):
            try GatewayAPIRouter(httpRoute: httpRoute, stableService: stable, canaryService: canary, context: context)
        case .nginxIngress(let ingress, let canary):
            try NGINXIngressRouter(ingress: ingress, canaryService: canary, context: context)
        case .caddy(let adminURL, let handlerID): try CaddyRouter(adminURL: adminURL, handlerID: handlerID, context: context)
        case .awsALB(let alb): try ALBRouter(route: alb, context: context)
        }
    }
}
