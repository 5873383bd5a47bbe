import Foundation
import Logging
import SluiceController
import SluiceCore
import SluiceHTTP
import SluiceKubernetes
import SluiceProviders
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport
import Testing

/// The real controller on a real store, with the Gateway API router and the Deployment workload on the
/// Kubernetes simulator, a fake metric provider and a manual clock: whole rollouts, with and without faults.
@Suite("Deployment-target rollouts on the Kubernetes simulator")
struct KubernetesRolloutEndToEndTests {
    /// Builds the Gateway API router and the Deployment workload on the simulator for every rollout.
    struct Factory: ProviderFactory {
        let client: KubernetesClient
        let metrics: any MetricProvider

        func providers(for strategy: Strategy, rollout: Rollout) throws -> RolloutProviders {
            guard case .deployment(let name, let container) = strategy.target,
                case .gatewayAPI(let route, let stable, let canary) = strategy.traffic
            else { throw SupportError("this test only builds deployment + gatewayAPI strategies") }
            return RolloutProviders(
                metrics: ["prom": metrics],
                router: try GatewayAPIRouter(
                    httpRoute: route, stableService: stable, canaryService: canary,
                    routes: client.httpRoutes(strategy.namespace)),
                workload: DeploymentWorkload(
                    client: client, namespace: strategy.namespace, deployment: name, container: container,
                    options: .init(
                        availabilityTimeout: .seconds(30), promotionTimeout: .seconds(30),
                        pollInterval: .milliseconds(20), keepPreviousTemplate: strategy.bake != nil)))
        }
    }

    static let strategy = Strategy(
        name: "checkout", namespace: "shop", target: .deployment(name: "checkout", container: "app"),
        traffic: .gatewayAPI(httpRoute: "checkout", stableService: "checkout", canaryService: "checkout-canary"),
        stages: [5, 25, 50, 100].map { Stage(name: "w\($0)", weight: $0, hold: .seconds(20)) },
        analysis: Analysis(
            interval: .seconds(10), failureLimit: 1, noDataLimit: 3, onNoData: .pause,
            providers: ["prom": .prometheus(PrometheusConfig(address: "http://127.0.0.1:9"))],
            checks: [Check(name: "error-rate", provider: "prom", query: "errors", max: 0.05)]))

    static var route: [String: Any] {
        [
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": ["name": "checkout", "namespace": "shop"],
            "spec": [
                "parentRefs": [["name": "gateway"]],
                "rules": [
                    [
                        "matches": [["path": ["type": "PathPrefix", "value": "/"]]],
                        "backendRefs": [
                            ["name": "checkout", "port": 80, "weight": 100],
                            ["name": "checkout-canary", "port": 80, "weight": 0],
                        ],
                    ]
                ],
            ],
        ]
    }

    /// One rollout of v2; `breach` makes the error rate breach once 25 % of traffic reaches the canary.
    struct Run {
        let rollout: Rollout
        let events: [SluiceCore.Event]
        let cluster: SimCluster
        /// Requests the simulator answered with an injected fault (429, 500, or a hang-up).
        let injectedFaults: Int
    }

    static func run(
        breach: Bool, faults: Double, strategy: Strategy = strategy,
        metrics makeMetrics: ((SimCluster) -> any MetricProvider)? = nil
    ) async throws -> Run {
        let cluster = try await SimCluster(
            objects: [
                Manifests.deployment("checkout", image: "registry.example/checkout:v1", replicas: 4, namespace: "shop"),
                route,
            ],
            availableAfter: .milliseconds(50),
            // The request timeout is one a loaded machine's answers fit in (at load 20 on two cores a simulator
            // answer can take over a second; an 800 ms timeout turned those into retries that loaded it further).
            // An injected hang stalls 0.3 s and drops the connection: a failed request the client retries,
            // without spending a timeout on it (KubernetesClientTests covers a hang that outlasts the timeout).
            options: .init(
                requestTimeout: .seconds(5), maxConflictAttempts: 10, maxThrottleAttempts: 10,
                maxRetryAfter: .milliseconds(50), maxServerAttempts: 10, serverRetryDelay: .milliseconds(10)))
        if faults > 0 {
            try await cluster.sim.setFaults(fraction: faults, kinds: ["429", "500", "hang"], hangSeconds: 0.3, seed: 5)
        }
        let metrics =
            makeMetrics?(cluster) ?? RouteErrorRate(routes: cluster.client.httpRoutes("shop"), breachFrom: breach ? 25 : nil)
        let directory = try makeTemporaryDirectory("kube-e2e")
        let store = try Store(path: directory + "/sluice.db")
        let clock = ManualClock()
        _ = try await store.putStrategy(strategy, now: clock.now())
        var options = Controller.Options()
        options.observeTimeout = .seconds(10)
        options.effectTimeout = .seconds(60)
        let controller = Controller(
            store: store, providers: Factory(client: cluster.client, metrics: metrics), clock: clock, http: nil,
            logger: Logger(label: "e2e", factory: { _ in SwiftLogNoOpLogHandler() }), options: options)
        let running = Task { try await controller.run() }
        defer { running.cancel() }

        let settle = {
            try await waitUntil("the controller to settle", timeout: .seconds(60), interval: .milliseconds(5)) {
                let snapshot = controller.snapshot()
                return snapshot.running && snapshot.runningEffectBatches == 0
                    && clock.sleepers == snapshot.drivenRollouts
            }
        }
        let started = try await controller.startRollout(
            strategy: strategy.key, version: "v2", actor: "ci", supersede: false)
        try await settle()
        for _ in 0..<200 {
            if let rollout = try await store.rollout(started.id), rollout.phase.isTerminal {
                try await cluster.sim.setFaults(fraction: 0, kinds: [])
                let injected = try await cluster.sim.requests().filter { [0, 429, 500].contains($0.status) }.count
                return Run(
                    rollout: rollout, events: try await store.events(EventQuery(rollout: started.id)), cluster: cluster,
                    injectedFaults: injected)
            }
            clock.advance(by: .seconds(10))
            try await settle()
        }
        throw SupportError(
            "rollout not final after 200 ticks: \(String(describing: try await store.rollout(started.id)?.phase))")
    }

    static func canaryWeight(_ c: SimCluster) async throws -> Int? {
        try await c.client.httpRoutes("shop").get("checkout").spec.rules?.first?.backendRefs?
            .first { $0.name == "checkout-canary" }?.weight
    }

    @Test(
        "5 → 25 → 50 → 100 %, then promotion: stable runs v2, traffic back on stable, canary at 0",
        arguments: [0.0, 0.2])
    func promotes(faults: Double) async throws {
        let run = try await Self.run(breach: false, faults: faults)
        #expect(run.rollout.phase == .succeeded, "\(run.events.map { "\($0.type): \($0.message)" })")
        let shifted = run.events.filter { $0.type == .stageStarted }.compactMap(\.weight)
        #expect(shifted == [5, 25, 50, 100])
        #expect((run.injectedFaults > 0) == (faults > 0), "\(run.injectedFaults) faults injected")
        // Capacity before traffic: each stage starts only after the canary was reported ready for its weight.
        let order = run.events.compactMap { event -> String? in
            switch event.type {
            case .canaryDeployed: "ready"
            case .stageStarted: "stage \(event.weight ?? -1)"
            default: nil
            }
        }
        #expect(order == ["ready", "stage 5", "ready", "stage 25", "ready", "stage 50", "ready", "stage 100"])
        let stable = try await run.cluster.client.deployments("shop").get("checkout")
        #expect(stable.spec.template.spec.containers[0].image == "registry.example/checkout:v2")
        #expect(stable.isRolledOut)
        #expect(try await run.cluster.client.deployments("shop").get("checkout-canary").spec.replicas == 0)
        #expect(try await Self.canaryWeight(run.cluster) == 0)
        // Events on the Deployment: ManifestTests runs `sluice serve`, which mirrors them, on the simulator.
    }

    @Test(
        "a breach at 25 % rolls back: traffic to stable, canary at 0, the stable Deployment untouched",
        arguments: [0.0, 0.2])
    func rollsBack(faults: Double) async throws {
        let run = try await Self.run(breach: true, faults: faults)
        #expect(run.rollout.phase == .rolledBack, "\(run.events.map { "\($0.type): \($0.message)" })")
        #expect(run.events.contains { $0.type == .checkBreached })
        #expect((run.injectedFaults > 0) == (faults > 0), "\(run.injectedFaults) faults injected")
        let stable = try await run.cluster.client.deployments("shop").get("checkout")
        #expect(stable.spec.template.spec.containers[0].image == "registry.example/checkout:v1")
        #expect(stable.metadata.generation == 1)
        #expect(try await run.cluster.client.deployments("shop").get("checkout-canary").spec.replicas == 0)
        #expect(try await Self.canaryWeight(run.cluster) == 0)
        let writes = try await run.cluster.sim.requests().filter {
            $0.method != "GET" && $0.path.hasSuffix("/deployments/checkout")
        }
        #expect(writes.isEmpty)
    }
}

extension KubernetesRolloutEndToEndTests {
    @Test(
        "a breach in a Deployment's bake: the previous template takes all traffic as the canary, then stable gets it back",
        arguments: [0.0, 0.2])
    func bakeRollbackUndoesThePromotionTrafficFirst(faults: Double) async throws {
        var strategy = Self.strategy
        strategy.bake = Bake(duration: .seconds(60))
        let run = try await Self.run(
            breach: false, faults: faults, strategy: strategy,
            metrics: { StableVersionErrorRate(client: $0.client, badImage: "registry.example/checkout:v2") })
        let types = run.events.map(\.type.rawValue)
        #expect(run.rollout.phase == .rolledBack, "\(run.events.map { "\($0.type): \($0.message)" })")
        #expect(types.contains("BakeStarted"))
        let undo = Array(types.drop { $0 != "RollbackStarted" })
        #expect(
            undo.filter { $0 != "EffectFailed" }
                == ["RollbackStarted", "CanaryDeployed", "TrafficShifted", "StableRestored", "RolledBack"],
            "\(undo)")

        let deployments = run.cluster.client.deployments("shop")
        let stable = try await deployments.get("checkout")
        #expect(stable.spec.template.spec.containers[0].image == "registry.example/checkout:v1")
        #expect(stable.isRolledOut)
        #expect(stable.metadata.annotations?[DeploymentWorkload.previousTemplateOfAnnotation] == "v2")
        #expect(try await deployments.get("checkout-canary").spec.replicas == 0)
        #expect(try await Self.canaryWeight(run.cluster) == 0)

        // The writes after the promotion, in order (a write retried after an injected fault counts once): the
        // stable Deployment is restored only while the route sends everything to the canary running v1.
        let writes = try await run.cluster.sim.requests().filter { $0.method != "GET" && (200..<300).contains($0.status) }
            .compactMap(Self.describe)
        let promotion = try #require(writes.lastIndex(of: "stable v2"))
        var after: [String] = []
        for write in writes[(promotion + 1)...] where write != after.last { after.append(write) }
        #expect(
            after == [
                "route 0", "canary ×0", "canary v1 ×4", "route 100", "stable v1", "route 0", "canary ×0",
            ], "\(after)")
    }

    /// A write to the simulator (a create, or a merge patch of what changed) as "stable TAG", "canary TAG ×N",
    /// "canary ×N" (a scale) or "route CANARY-WEIGHT"; nil for anything else.
    static func describe(_ request: KubeSimulator.Request) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any],
            let spec = object["spec"] as? [String: Any]
        else { return nil }
        if let rules = spec["rules"] as? [[String: Any]] {
            let refs = rules.first?["backendRefs"] as? [[String: Any]] ?? []
            return "route \(refs.first { $0["name"] as? String == "checkout-canary" }?["weight"] as? Int ?? -1)"
        }
        let name = (object["metadata"] as? [String: Any])?["name"] as? String
            ?? request.path.split(separator: "/").last.map(String.init)
        let containers = ((spec["template"] as? [String: Any])?["spec"] as? [String: Any])?["containers"]
        let image = (containers as? [[String: Any]])?.first?["image"] as? String
        var parts = [name == "checkout-canary" ? "canary" : name == "checkout" ? "stable" : "?"]
        if let image { parts.append(image.split(separator: ":").last.map(String.init) ?? image) }
        if let replicas = spec["replicas"] as? Int { parts.append("×\(replicas)") }
        return parts.joined(separator: " ")
    }
}

/// The error rate of whatever takes traffic: 0.5 while the stable Deployment runs `badImage` and the route sends
/// the canary nothing (the promoted version baking), else 0.01.
struct StableVersionErrorRate: MetricProvider {
    let client: KubernetesClient
    let badImage: String

    func sample(query: String) async throws -> Double? {
        let image = try await client.deployments("shop").get("checkout").spec.template.spec.containers[0].image
        let weight =
            try await client.httpRoutes("shop").get("checkout").spec.rules?.first?.backendRefs?
            .first { $0.name == "checkout-canary" }?.weight ?? 0
        return image == badImage && weight == 0 ? 0.5 : 0.01
    }
}

/// The canary's error rate: 0.01, or 0.5 once the route sends it at least `breachFrom` percent (read from the
/// HTTPRoute on the simulator at every sample).
struct RouteErrorRate: MetricProvider {
    let routes: ResourceClient<HTTPRoute>
    let breachFrom: Int?

    func sample(query: String) async throws -> Double? {
        guard let breachFrom else { return 0.01 }
        let weight =
            try await routes.get("checkout").spec.rules?.first?.backendRefs?
            .first { $0.name == "checkout-canary" }?.weight ?? 0
        return weight >= breachFrom ? 0.5 : 0.01
    }
}
