import Foundation
import SluiceCore
import SluiceHTTP
import SluiceKubernetes
import SluiceTestSupport
import Testing

@testable import SluiceProviders

/// Routers and metric providers are keyed by the strategy's enum case: every case builds its own kind of router or
/// provider, and the strategy format (reader and schema) knows exactly those cases (docs/architecture.md, "Add a
/// router or a metric provider").
@Suite struct RegistryTests {
    /// A route of each kind; a `switch`, so a new kind without a sample here does not compile.
    static func route(_ kind: TrafficRoute.Kind) -> TrafficRoute {
        switch kind {
        case .gatewayAPI: .gatewayAPI(httpRoute: "checkout", stableService: "checkout", canaryService: "checkout-canary")
        case .nginxIngress: .nginxIngress(ingress: "checkout", canaryService: "checkout-canary")
        case .caddy: .caddy(adminURL: "http://127.0.0.1:2019", handlerID: "checkout")
        case .awsALB:
            .awsALB(
                ALBRoute(
                    region: "eu-west-1", listenerARN: "arn:l", stableTargetGroupARN: "arn:s",
                    canaryTargetGroupARN: "arn:c"))
        }
    }

    static let context = RouterContext(
        namespace: "shop", pools: Pools(stable: ["127.0.0.1:1"], canary: ["127.0.0.1:2"]), http: RecordingHTTPClient(),
        environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"],
        kubernetes: KubernetesClient(config: ClusterConfig(server: "https://127.0.0.1:1"), http: RecordingHTTPClient()))

    @Test(arguments: TrafficRoute.Kind.allCases)
    func everyRouterKindBuildsItsOwnRouter(kind: TrafficRoute.Kind) throws {
        let route = Self.route(kind)
        #expect(route.kind == kind)
        let router = try RouterRegistry.router(for: route, context: Self.context)
        switch kind {
        case .gatewayAPI:
            #expect((router as? GatewayAPIRouter)?.canaryService == "checkout-canary")
        case .nginxIngress:
            #expect((router as? NGINXIngressRouter)?.canaryIngress == "checkout-canary")
        case .caddy:
            #expect((router as? CaddyRouter)?.pools == Self.context.pools)
        case .awsALB:
            #expect((router as? ALBRouter)?.endpoint == "https://elasticloadbalancing.eu-west-1.amazonaws.com/")
        }
    }

    @Test(arguments: [TrafficRoute.Kind.gatewayAPI, .nginxIngress])
    func aKubernetesRouterWithoutAClusterSaysSo(kind: TrafficRoute.Kind) {
        var context = Self.context
        context.kubernetes = nil
        let error = #expect(throws: ProviderError.self) { try RouterRegistry.router(for: Self.route(kind), context: context) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("the '\(kind.rawValue)' router needs a Kubernetes cluster") == true)
    }

    @Test(arguments: ProviderConfig.Kind.allCases)
    func everyProviderKindBuildsItsOwnProvider(kind: ProviderConfig.Kind) throws {
        let registry = MetricProviderRegistry(client: RecordingHTTPClient())
        switch kind {
        case .prometheus:
            let config = ProviderConfig.prometheus(PrometheusConfig(address: "http://127.0.0.1:9090"))
            #expect(config.kind == kind)
            #expect(try registry.makeProvider(name: "p", config: config) is PrometheusProvider)
        case .web:
            let config = ProviderConfig.web(WebConfig(url: "http://127.0.0.1:1/", jsonPath: "v"))
            #expect(config.kind == kind)
            #expect(try registry.makeProvider(name: "p", config: config) is WebProvider)
        }
    }

    /// The schema (for editors and CI) lists exactly the routers and providers Sluice builds: the one place of the
    /// strategy format that a `switch` cannot check.
    @Test func theSchemaListsExactlyTheRegisteredKinds() throws {
        let schema = try #require(
            JSONSerialization.jsonObject(with: Data(StrategySchema.json.utf8)) as? [String: Any])
        let defs = try #require(schema["$defs"] as? [String: Any])
        func keys(_ def: String) throws -> Set<String> {
            let entry = try #require(defs[def] as? [String: Any], "$defs.\(def)")
            return Set(try #require(entry["properties"] as? [String: Any], "$defs.\(def).properties").keys)
        }
        #expect(try keys("traffic") == Set(TrafficRoute.Kind.allCases.map(\.rawValue)))
        #expect(try keys("provider") == Set(ProviderConfig.Kind.allCases.map(\.rawValue)))
    }

    /// Every router key the reader accepts builds a router: a strategy naming each one loads, and its route builds.
    @Test(arguments: TrafficRoute.Kind.allCases)
    func aStrategyNamingEachRouterLoadsAndBuildsIt(kind: TrafficRoute.Kind) throws {
        let traffic: String
        let target: String
        switch kind {
        case .gatewayAPI:
            traffic = "gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}"
            target = "deployment: checkout"
        case .nginxIngress:
            traffic = "nginxIngress: {ingress: checkout, canaryService: checkout-canary}"
            target = "deployment: checkout"
        case .caddy:
            traffic = "caddy: {adminURL: \"http://127.0.0.1:2019\", handlerID: checkout}"
            target = "upstreams: {stable: [\"127.0.0.1:1\"], canary: [\"127.0.0.1:2\"]}"
        case .awsALB:
            traffic = """
                awsALB: {region: eu-west-1, \
                listenerARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2", \
                stableTargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/stable/73e2d6bc24d8a067", \
                canaryTargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/canary/73e2d6bc24d8a068"}
                """
            target = "upstreams: {stable: [\"127.0.0.1:1\"], canary: [\"127.0.0.1:2\"]}"
        }
        let yaml = """
            apiVersion: sluice.dev/v1
            kind: Strategy
            metadata: {name: checkout, namespace: shop}
            spec:
              target: {\(target)}
              traffic: {\(traffic)}
              stages: [{weight: 100}]
            """
        let result = StrategyLoader.load(yaml: yaml, file: "t.yaml")
        #expect(result.errors == [])
        let strategy = try #require(result.strategies.first)
        #expect(strategy.traffic.kind == kind)
        _ = try RouterRegistry.router(for: strategy.traffic, context: Self.context)
    }
}
