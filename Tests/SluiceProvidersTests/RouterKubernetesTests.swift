import Foundation
import SluiceCore
import SluiceHTTP
import SluiceKubernetes
import SluiceTestSupport
import Testing

@testable import SluiceProviders

/// The Gateway API and NGINX Ingress routers against the Kubernetes API simulator.
@Suite struct RouterKubernetesTests {
    static let namespace = "shop"

    static var route: [String: Any] {
        [
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": ["name": "checkout", "namespace": namespace],
            "spec": [
                "parentRefs": [["name": "gateway"]],
                "rules": [
                    [
                        "matches": [["path": ["type": "PathPrefix", "value": "/"]]],
                        "filters": [
                            [
                                "type": "RequestHeaderModifier",
                                "requestHeaderModifier": ["set": [["name": "x", "value": "y"]]],
                            ]
                        ],
                        "backendRefs": [
                            ["name": "checkout", "port": 80, "weight": 100],
                            ["name": "checkout-canary", "port": 80, "weight": 0],
                        ],
                    ],
                    [
                        "matches": [["path": ["type": "PathPrefix", "value": "/static"]]],
                        "backendRefs": [["name": "static", "port": 8080, "weight": 7]],
                    ],
                ],
            ],
        ]
    }

    static var ingress: [String: Any] {
        [
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": [
                "name": "web", "namespace": namespace,
                "annotations": ["nginx.ingress.kubernetes.io/proxy-body-size": "8m"],
            ],
            "spec": [
                "ingressClassName": "nginx",
                "rules": [
                    [
                        "host": "shop.example",
                        "http": [
                            "paths": [
                                [
                                    "path": "/", "pathType": "Prefix",
                                    "backend": ["service": ["name": "web", "port": ["number": 80]]],
                                ]
                            ]
                        ],
                    ]
                ],
            ],
        ]
    }

    /// A simulator with `objects` and a client from the kubeconfig it wrote (HTTPS, CA, token).
    func cluster(_ objects: [[String: Any]], http: (any HTTPClient)? = nil) async throws -> (
        KubeSimulator, KubernetesClient
    ) {
        let sim = try await KubeSimulator(objects: objects)
        let config = try ClusterConfig.fromKubeconfig(paths: [try sim.writeKubeconfig(current: "admin")])
        return (
            sim,
            KubernetesClient(
                config: config, http: try http ?? CurlClient(), options: .init(requestTimeout: .seconds(5)))
        )
    }

    @Test func httpRouteWeightsAreSetAndReadBackAndOtherRulesStay() async throws {
        let (sim, client) = try await cluster([Self.route])
        defer { sim.stop() }
        let routes = client.httpRoutes(Self.namespace)
        let router = try GatewayAPIRouter(
            httpRoute: "checkout", stableService: "checkout", canaryService: "checkout-canary", routes: routes)
        let before = try await routes.get("checkout")
        for weight in [5, 25, 50, 100, 0] {
            try await router.setCanaryWeight(weight)
            #expect(try await router.canaryWeight() == weight)
            let stored = try await routes.get("checkout")
            #expect(stored.spec.rules?[0].backendRefs?.map(\.weight) == [100 - weight, weight])
            #expect(stored.spec.rules?[0].additional == before.spec.rules?[0].additional, "matches and filters kept")
            #expect(stored.spec.rules?[1] == before.spec.rules?[1], "the other rule is untouched")
            #expect(stored.spec.parentRefs == before.spec.parentRefs)
        }
        // Every write was a merge patch conditional on the resourceVersion it read.
        let patches = try await sim.requests().filter {
            $0.method == "PATCH" && $0.path.hasSuffix("/httproutes/checkout")
        }
        #expect(!patches.isEmpty)
        for patch in patches {
            #expect(patch.contentType == "application/merge-patch+json")
            #expect(patch.body.contains("\"resourceVersion\""))
        }
    }

    @Test func aHandEditedHTTPRouteReadsBackAsDriftAndIsRestored() async throws {
        let (sim, client) = try await cluster([Self.route])
        defer { sim.stop() }
        let routes = client.httpRoutes(Self.namespace)
        let context = RouterContext(
            namespace: Self.namespace, http: try CurlClient(), environment: [:], kubernetes: client)
        let router = try RouterRegistry.router(
            for: .gatewayAPI(httpRoute: "checkout", stableService: "checkout", canaryService: "checkout-canary"),
            context: context)
        #expect(router is GatewayAPIRouter)
        try await router.setCanaryWeight(25)
        try await routes.update("checkout") { route in
            route.spec.rules?[0].backendRefs?[0].weight = 40
            route.spec.rules?[0].backendRefs?[1].weight = 60
        }
        #expect(try await router.canaryWeight() == 60)
        try await router.setCanaryWeight(25)
        #expect(try await router.canaryWeight() == 25)
    }

    @Test func aConcurrentWriterCausesAConflictThatIsReReadNotOverwritten() async throws {
        let sim = try await KubeSimulator(objects: [Self.route])
        defer { sim.stop() }
        let interfering = InterferingHTTPClient(client: try CurlClient(), times: 1) { _, _ in
            try await sim.touch(plural: "httproutes", namespace: Self.namespace, name: "checkout")
        }
        let config = try ClusterConfig.fromKubeconfig(paths: [try sim.writeKubeconfig(current: "admin")])
        let client = KubernetesClient(config: config, http: interfering, options: .init(requestTimeout: .seconds(5)))
        let router = try GatewayAPIRouter(
            httpRoute: "checkout", stableService: "checkout", canaryService: "checkout-canary",
            routes: client.httpRoutes(Self.namespace))
        try await router.setCanaryWeight(50)
        #expect(try await router.canaryWeight() == 50)
        let patches = try await sim.requests().filter { $0.method == "PATCH" }.map(\.status)
        #expect(patches == [409, 200], "the first write met the other writer's change, the second was based on it")
    }

    @Test func aMissingHTTPRouteOrServiceIsAClearError() async throws {
        let (sim, client) = try await cluster([Self.route])
        defer { sim.stop() }
        let missing = try GatewayAPIRouter(
            httpRoute: "nothere", stableService: "checkout", canaryService: "checkout-canary",
            routes: client.httpRoutes(Self.namespace))
        let error = await #expect(throws: ProviderError.self) { try await missing.setCanaryWeight(5) }
        #expect(error?.code == .rejected)
        #expect(error?.provider == "gatewayAPI httproute shop/nothere")
        #expect(error?.status == 404)
        let wrong = try GatewayAPIRouter(
            httpRoute: "checkout", stableService: "cart", canaryService: "cart-canary",
            routes: client.httpRoutes(Self.namespace))
        let refused = await #expect(throws: ProviderError.self) { try await wrong.setCanaryWeight(5) }
        #expect(refused?.message == "no rule of HTTPRoute 'checkout' has a backendRef to the stable Service 'cart'")
    }

    @Test func nginxCanaryIngressLivesFromTheFirstWeightUntilFinalize() async throws {
        let (sim, client) = try await cluster([Self.ingress])
        defer { sim.stop() }
        let ingresses = client.ingresses(Self.namespace)
        let router = try NGINXIngressRouter(ingress: "web", canaryService: "web-canary", ingresses: ingresses)
        #expect(try await router.canaryWeight() == 0)
        try await router.setCanaryWeight(0)
        #expect(
            try await ingresses.list().map(\.metadata.name) == ["web"],
            "no canary Ingress before the first non-zero weight")

        try await router.setCanaryWeight(10)
        let canary = try await ingresses.get("web-canary")
        #expect(canary.metadata.annotations?["nginx.ingress.kubernetes.io/canary"] == "true")
        #expect(canary.metadata.annotations?["nginx.ingress.kubernetes.io/canary-weight"] == "10")
        #expect(canary.metadata.annotations?["nginx.ingress.kubernetes.io/proxy-body-size"] == "8m")
        #expect(canary.metadata.labels?["app.kubernetes.io/managed-by"] == "sluice")
        #expect(canary.spec.rules?[0].http?.paths[0].backend.service?.name == "web-canary")
        #expect(canary.spec.ingressClassName == "nginx")
        let main = try await ingresses.get("web")
        #expect(main.spec.rules?[0].http?.paths[0].backend.service?.name == "web", "the main Ingress is untouched")

        for weight in [25, 50, 100, 0] {
            try await router.setCanaryWeight(weight)
            #expect(try await router.canaryWeight() == weight)
        }
        // Drift: someone edits the canary weight by hand.
        _ = try await ingresses.patch(
            "web-canary",
            mergePatch: .object([
                "metadata": .object(["annotations": .object(["nginx.ingress.kubernetes.io/canary-weight": "30"])])
            ]))
        #expect(try await router.canaryWeight() == 30)
        try await router.setCanaryWeight(0)
        #expect(try await router.canaryWeight() == 0)

        try await router.finalize()
        #expect(try await ingresses.list().map(\.metadata.name) == ["web"])
        #expect(try await router.canaryWeight() == 0)
        try await router.finalize()
    }

    @Test func nginxWithoutItsMainIngressIsAClearError() async throws {
        let (sim, client) = try await cluster([])
        defer { sim.stop() }
        let router = try NGINXIngressRouter(
            ingress: "web", canaryService: "web-canary", ingresses: client.ingresses(Self.namespace))
        let error = await #expect(throws: ProviderError.self) { try await router.setCanaryWeight(10) }
        #expect(error?.code == .rejected)
        #expect(error?.provider == "nginxIngress ingress shop/web")
        #expect(error?.message.contains("not found") == true, "\(String(describing: error))")
    }
}
