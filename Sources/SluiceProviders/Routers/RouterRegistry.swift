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

    public init(
        namespace: String = "default", pools: Pools? = nil, http: any HTTPClient, environment: [String: String],
        kubernetes: KubernetesClient? = nil
    ) {
        self.namespace = namespace
        self.pools = pools
        self.http = http
        self.environment = environment
        self.kubernetes = kubernetes
    }
}

/// Maps the router key of a strategy (`caddy`, `awsALB`, ...) to the factory that builds its router.
public struct RouterRegistry: Sendable {
    /// Builds a router from its route; throws `ProviderError.invalidConfiguration` on bad settings.
    public typealias Factory = @Sendable (TrafficRoute, RouterContext) throws -> any TrafficRouter

    private var factories: [String: Factory]

    /// A registry with exactly `factories`, keyed by `TrafficRoute.kind`.
    public init(factories: [String: Factory] = [:]) {
        self.factories = factories
    }

    /// Every router Sluice has: Caddy and AWS ALB over their APIs, Gateway API and NGINX Ingress over
    /// Kubernetes (these two need `RouterContext.kubernetes`).
    public static let standard = RouterRegistry(factories: [
        "caddy": { route, context in
            guard case .caddy(let adminURL, let handlerID) = route else { throw mismatch(route, "caddy") }
            return try CaddyRouter(adminURL: adminURL, handlerID: handlerID, pools: context.pools, client: context.http)
        },
        "awsALB": { route, context in
            guard case .awsALB(let alb) = route else { throw mismatch(route, "awsALB") }
            let credentials = try AWSCredentialChain.source(environment: context.environment, http: context.http)
            return try ALBRouter(route: alb, credentials: credentials, client: context.http)
        },
        "gatewayAPI": { route, context in
            guard case .gatewayAPI(let httpRoute, let stable, let canary) = route else {
                throw mismatch(route, "gatewayAPI")
            }
            let cluster = try kubernetes(context, "gatewayAPI")
            return try GatewayAPIRouter(
                httpRoute: httpRoute, stableService: stable, canaryService: canary,
                routes: cluster.httpRoutes(context.namespace))
        },
        "nginxIngress": { route, context in
            guard case .nginxIngress(let ingress, let canary) = route else { throw mismatch(route, "nginxIngress") }
            let cluster = try kubernetes(context, "nginxIngress")
            return try NGINXIngressRouter(
                ingress: ingress, canaryService: canary, ingresses: cluster.ingresses(context.namespace))
        },
    ])

    /// Adds or replaces the factory for `kind`.
    public mutating func register(_ kind: String, _ factory: @escaping Factory) {
        factories[kind] = factory
    }

    /// The router kinds this registry can build.
    public var kinds: [String] { factories.keys.sorted() }

    /// The router for `route`.
    public func router(for route: TrafficRoute, context: RouterContext) throws -> any TrafficRouter {
        guard let factory = factories[route.kind] else {
            throw ProviderError(
                .invalidConfiguration, provider: route.kind,
                "no '\(route.kind)' router is registered (known: \(kinds.joined(separator: ", ")))")
        }
        return try factory(route, context)
    }

    private static func kubernetes(_ context: RouterContext, _ kind: String) throws -> KubernetesClient {
        guard let cluster = context.kubernetes else {
            throw ProviderError(
                .invalidConfiguration, provider: kind,
                "the '\(kind)' router needs a Kubernetes cluster, and none is configured (kubeconfig or in-cluster)")
        }
        return cluster
    }

    private static func mismatch(_ route: TrafficRoute, _ kind: String) -> ProviderError {
        ProviderError(.invalidConfiguration, provider: kind, "the '\(kind)' factory was given a '\(route.kind)' route")
    }
}
