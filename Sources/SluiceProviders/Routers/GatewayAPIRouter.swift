import SluiceCore
import SluiceKubernetes

/// Splits traffic with a Gateway API HTTPRoute (gateway.networking.k8s.io/v1): the `weight` of the
/// `backendRefs` to `stableService` and `canaryService` in every rule that sends to the stable Service.
/// Other rules and backends are untouched. Writes are merge patches of `spec.rules` conditional on the
/// `resourceVersion` that was read; a conflict re-reads and re-applies the weights (bounded).
public struct GatewayAPIRouter: TrafficRouter {
    public let httpRoute: String
    public let stableService: String
    public let canaryService: String
    let routes: ResourceClient<HTTPRoute>

    /// A router for the HTTPRoute `httpRoute` in the namespace of `routes`.
    public init(httpRoute: String, stableService: String, canaryService: String, routes: ResourceClient<HTTPRoute>)
        throws
    {
        let name = "gatewayAPI httproute \(routes.namespace)/\(httpRoute)"
        for (field, value) in [
            ("httpRoute", httpRoute), ("stableService", stableService), ("canaryService", canaryService),
        ]
        where value.isEmpty {
            throw ProviderError(.invalidConfiguration, provider: name, "\(field) is empty")
        }
        guard stableService != canaryService else {
            throw ProviderError(.invalidConfiguration, provider: name, "stableService and canaryService are the same")
        }
        self.httpRoute = httpRoute
        self.stableService = stableService
        self.canaryService = canaryService
        self.routes = routes
    }

    var name: String { "gatewayAPI httproute \(routes.namespace)/\(httpRoute)" }

    public func setCanaryWeight(_ weight: Int) async throws {
        try TrafficSplit.validate(weight, router: name)
        try await ProviderError.translating(provider: name) {
            try await routes.update(httpRoute) { route in
                route.spec.rules = try HTTPRouteWeights.rules(
                    route.spec.rules ?? [], stable: stableService, canary: canaryService, canaryWeight: weight,
                    route: httpRoute, namespace: routes.namespace)
            }
        }
    }

    public func canaryWeight() async throws -> Int {
        let route = try await ProviderError.translating(provider: name) { try await routes.get(httpRoute) }
        guard
            let split = HTTPRouteWeights.split(
                route.spec.rules ?? [], stable: stableService, canary: canaryService, namespace: routes.namespace)
        else {
            throw ProviderError(
                .rejected, provider: name,
                "no rule of HTTPRoute '\(httpRoute)' sends to Service '\(stableService)' or '\(canaryService)'")
        }
        guard let percent = TrafficSplit.percent(canary: split.canary, total: split.total) else {
            throw ProviderError(.badResponse, provider: name, "every backend of the managed rules has weight 0")
        }
        return percent
    }

    /// The HTTPRoute belongs to its owner; Sluice created nothing to remove.
    public func finalize() async throws {}
}

extension GatewayAPIRouter {
    /// The router of a strategy's `traffic.gatewayAPI`, in the strategy's namespace of the configured cluster.
    init(httpRoute: String, stableService: String, canaryService: String, context: RouterContext) throws {
        let cluster = try context.kubernetes(for: .gatewayAPI)
        try self.init(
            httpRoute: httpRoute, stableService: stableService, canaryService: canaryService,
            routes: cluster.httpRoutes(context.namespace))
    }
}
