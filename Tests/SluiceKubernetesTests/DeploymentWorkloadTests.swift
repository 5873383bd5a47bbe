import Foundation
import SluiceCore
import SluiceHTTP
import SluiceKubernetes
import SluiceTestSupport
import Testing

@Suite("The Deployment workload")
struct DeploymentWorkloadTests {
    @Test(
        "canary replicas are ceil(stable × weight / 100), at least 1",
        arguments: [
            (4, 5, 1), (4, 25, 1), (4, 50, 2), (4, 100, 4), (10, 25, 3), (3, 50, 2), (0, 5, 1), (20, 5, 1), (1, 100, 1),
            (7, 99, 7),
        ])
    func replicas(stable: Int, weight: Int, expected: Int) {
        #expect(DeploymentWorkload.canaryReplicas(stableReplicas: stable, weight: weight) == expected)
    }

    @Test(
        "the new image keeps the repository and changes the tag",
        arguments: [
            ("registry.example/checkout:v1", "v2", "registry.example/checkout:v2"),
            ("localhost:5000/app:v1", "v2", "localhost:5000/app:v2"),
            ("localhost:5000/app", "v2", "localhost:5000/app:v2"),
            ("app@sha256:abc", "v2", "app:v2"),
            ("app:v1", "sha256:def", "app@sha256:def"),
            ("app:v1", "ghcr.io/x/app:v3", "ghcr.io/x/app:v3"),
        ])
    func image(current: String, version: String, expected: String) {
        #expect(DeploymentWorkload.image(current, version: version) == expected)
    }

    @Test(
        "the canary selector never overlaps the stable one",
        arguments: [
            (["app": "checkout"], ["app": "checkout-canary", "sluice.dev/track": "canary"]),
            (["app": "checkout", "sluice.dev/track": "stable"], ["app": "checkout", "sluice.dev/track": "canary"]),
            (["app": "a", "tier": "web"], ["app": "a-canary", "tier": "web-canary", "sluice.dev/track": "canary"]),
        ])
    func selector(stable: [String: String], expected: [String: String]) throws {
        let canary = try DeploymentWorkload.canarySelector(for: LabelSelector(matchLabels: stable), of: "ns/x")
        #expect(canary == expected)
        #expect(!DeploymentWorkload.selectorsOverlap(canary, stable))
        #expect(
            DeploymentWorkload.selectorsOverlap(["app": "a"], ["app": "a", "x": "y"]), "the overlap test itself works")
    }

    @Test("a selector with matchExpressions is refused with a clear reason")
    func matchExpressions() {
        let error = #expect(throws: KubernetesError.self) {
            try DeploymentWorkload.canarySelector(
                for: LabelSelector(matchLabels: ["app": "a"], matchExpressions: [.object(["key": "x"])]), of: "shop/a")
        }
        #expect(error?.message.contains("shop/a selects pods with matchExpressions") == true)
    }

    /// The simulator with a stable `checkout` (4 replicas, image checkout:v1) in namespace shop.
    static func cluster(availableAfter: Duration = .milliseconds(300)) async throws -> SimCluster {
        try await SimCluster(
            objects: [
                Manifests.deployment("checkout", image: "registry.example/checkout:v1", replicas: 4, namespace: "shop")
            ],
            availableAfter: availableAfter)
    }

    static func workload(
        _ c: SimCluster, container: String? = nil, availability: Duration = .seconds(30), bakes: Bool = false
    ) -> DeploymentWorkload {
        DeploymentWorkload(
            client: c.client, namespace: "shop", deployment: "checkout", container: container,
            options: .init(
                availabilityTimeout: availability, promotionTimeout: .seconds(30), pollInterval: .milliseconds(50),
                keepPreviousTemplate: bakes))
    }

    @Test("deployCanary builds checkout-canary from the stable template, scaled per weight, and reports availability")
    func deployCanary() async throws {
        let c = try await Self.cluster()
        let workload = Self.workload(c)
        try await c.sim.setAvailableAfter(.seconds(600))  // pods stay unavailable until the test lets them
        try await workload.deployCanary(version: "v2", weight: 5)
        guard case .progressing(let why) = try await workload.canaryStatus() else {
            Issue.record("new pods are not available at once")
            return
        }
        #expect(why == "0 of 1 replicas of shop/checkout-canary (registry.example/checkout:v2) available")
        let canary = try await c.client.deployments("shop").get("checkout-canary")
        #expect(canary.spec.replicas == 1)
        #expect(canary.metadata.labels?["sluice.dev/track"] == "canary")
        #expect(canary.metadata.labels?["app.kubernetes.io/managed-by"] == "sluice")
        #expect(canary.metadata.annotations?["sluice.dev/version"] == "v2")
        #expect(canary.spec.selector.matchLabels == ["app": "checkout-canary", "sluice.dev/track": "canary"])
        let pod = canary.spec.template
        #expect(pod.metadata?.labels?["sluice.dev/track"] == "canary")
        #expect(pod.metadata?.annotations?["team"] == "payments", "the stable template's annotations are kept")
        #expect(pod.spec.containers.map(\.image) == ["registry.example/checkout:v2", "busybox:1.36"])
        #expect(pod.spec.containers[0].additional["readinessProbe"] != nil, "probes, env and ports are kept")
        #expect(pod.spec.containers[0].additional["env"] != nil)
        try await c.sim.setAvailableAfter(.milliseconds(100))
        try await waitUntil("the canary to be available") { try await workload.canaryStatus() == .ready }

        try await c.sim.setAvailableAfter(.seconds(600))
        try await workload.deployCanary(version: "v2", weight: 50)
        #expect(try await c.client.deployments("shop").get("checkout-canary").spec.replicas == 2)
        let scaled = try await workload.canaryStatus()
        #expect(
            scaled == .progressing("1 of 2 replicas of shop/checkout-canary (registry.example/checkout:v2) available"))
        try await c.sim.setAvailableAfter(.milliseconds(100))
        try await workload.waitUntilCanaryAvailable()
        #expect(try await workload.canaryStatus() == .ready)
        try await workload.deployCanary(version: "v2", weight: 100)
        #expect(try await c.client.deployments("shop").get("checkout-canary").spec.replicas == 4)
    }

    @Test("a canary whose image cannot be pulled fails with a clear reason")
    func brokenImage() async throws {
        let c = try await Self.cluster()
        let workload = Self.workload(c, availability: .seconds(1))
        try await workload.deployCanary(version: "broken", weight: 25)
        try await waitUntil("the canary to be reported failed", timeout: .seconds(20)) {
            if case .failed = try await workload.canaryStatus() { return true }
            return false
        }
        guard case .failed(let reason) = try await workload.canaryStatus() else { return }
        #expect(reason.contains("shop/checkout-canary did not become available within its progress deadline (1s)"))
        #expect(reason.contains("registry.example/checkout:broken"))
        let error = await #expect(throws: KubernetesError.self) { try await workload.waitUntilCanaryAvailable() }
        #expect(error?.code == .unavailable)
    }

    @Test("promotion changes the stable image, waits for the rollout; the canary then scales to zero")
    func promote() async throws {
        let c = try await Self.cluster()
        let workload = Self.workload(c)
        try await workload.deployCanary(version: "v2", weight: 25)
        try await workload.waitUntilCanaryAvailable()
        try await workload.promote(version: "v2")
        let stable = try await c.client.deployments("shop").get("checkout")
        #expect(stable.isRolledOut, "promote returns only once the stable Deployment has rolled out")
        #expect(stable.spec.template.spec.containers.map(\.image) == ["registry.example/checkout:v2", "busybox:1.36"])
        #expect(stable.spec.template.spec.containers[0].additional["readinessProbe"] != nil)
        #expect(stable.metadata.generation == 2)
        #expect(stable.spec.selector.matchLabels == ["app": "checkout"], "the stable selector is untouched")
        try await workload.promote(version: "v2")  // idempotent: nothing to change, still rolled out
        #expect(try await c.client.deployments("shop").get("checkout").metadata.generation == 2)
        #expect(stable.metadata.annotations?["sluice.dev/previous-template"] == nil, "no bake: no template kept")
        try await workload.scaleDownCanary()
        #expect(try await c.client.deployments("shop").get("checkout-canary").spec.replicas == 0)
    }

    @Test("a promotion without a bake removes the template an earlier promotion with one kept")
    func promoteWithoutBakeDropsAnEarlierRecord() async throws {
        let c = try await Self.cluster()
        let baking = Self.workload(c, bakes: true)
        try await baking.deployCanary(version: "v2", weight: 25)
        try await baking.waitUntilCanaryAvailable()
        try await baking.promote(version: "v2")
        let kept = try await c.client.deployments("shop").get("checkout").metadata.annotations ?? [:]
        #expect(kept["sluice.dev/previous-template"] != nil && kept["sluice.dev/previous-template-of"] == "v2")
        let plain = Self.workload(c)
        try await plain.deployCanary(version: "v3", weight: 25)
        try await plain.waitUntilCanaryAvailable()
        try await plain.promote(version: "v3")
        let stable = try await c.client.deployments("shop").get("checkout")
        #expect(stable.spec.template.spec.containers[0].image == "registry.example/checkout:v3")
        #expect(stable.metadata.annotations?["sluice.dev/previous-template"] == nil)
        #expect(stable.metadata.annotations?["sluice.dev/previous-template-of"] == nil)
        let error = await #expect(throws: KubernetesError.self) { try await plain.deployPreviousCanary(promoted: "v3") }
        #expect(error?.message.contains("kubectl rollout undo") == true, "\(String(describing: error))")
    }

    @Test("promotion keeps the pod template it replaced; a bake's rollback runs it as the canary, then restores it")
    func undoPromotion() async throws {
        let c = try await Self.cluster()
        let workload = Self.workload(c, bakes: true)
        let deployments = c.client.deployments("shop")
        let original = try await deployments.get("checkout").spec.template
        try await workload.deployCanary(version: "v2", weight: 25)
        try await workload.waitUntilCanaryAvailable()
        try await workload.promote(version: "v2")
        try await workload.promote(version: "v2")  // a retried promotion keeps what the first one kept
        let promoted = try await deployments.get("checkout")
        #expect(promoted.metadata.annotations?["sluice.dev/previous-template-of"] == "v2")
        let kept = try #require(promoted.metadata.annotations?["sluice.dev/previous-template"])
        #expect(try JSONDecoder().decode(PodTemplateSpec.self, from: Data(kept.utf8)) == original)
        try await workload.scaleDownCanary()

        try await workload.deployPreviousCanary(promoted: "v2")
        let canary = try await deployments.get("checkout-canary")
        #expect(canary.spec.replicas == 4, "capacity for all traffic")
        #expect(canary.spec.template.spec.containers.map(\.image) == ["registry.example/checkout:v1", "busybox:1.36"])
        #expect(canary.spec.template.metadata?.labels?["sluice.dev/track"] == "canary")
        #expect(canary.spec.template.spec.containers[0].additional["readinessProbe"] != nil)
        try await workload.waitUntilCanaryAvailable()
        #expect(try await deployments.get("checkout").spec.template == promoted.spec.template, "stable untouched")

        try await workload.restoreStable(promoted: "v2")
        let restored = try await deployments.get("checkout")
        #expect(restored.isRolledOut, "restoreStable returns once the stable Deployment has rolled out")
        #expect(restored.spec.template == original)
        let generation = restored.metadata.generation
        try await workload.restoreStable(promoted: "v2")  // idempotent
        #expect(try await deployments.get("checkout").metadata.generation == generation)

        let error = await #expect(throws: KubernetesError.self) { try await workload.restoreStable(promoted: "v3") }
        #expect(
            error?.message.contains(
                "shop/checkout does not keep the pod template it had before v3 was promoted (it keeps the one from "
                    + "before v2); restore it by hand: kubectl rollout undo deployment/checkout -n shop") == true,
            "\(String(describing: error))")
        #expect(try await deployments.get("checkout").spec.template == original, "nothing written on that error")
    }

    @Test("rollback (scale down) never writes the stable Deployment")
    func rollbackLeavesStable() async throws {
        let c = try await Self.cluster()
        let workload = Self.workload(c)
        let before = try await c.client.deployments("shop").get("checkout")
        try await workload.deployCanary(version: "v2", weight: 50)
        try await workload.scaleDownCanary()
        try await workload.scaleDownCanary()
        let after = try await c.client.deployments("shop").get("checkout")
        #expect(after.spec == before.spec)
        #expect(after.metadata.generation == before.metadata.generation)
        let writes = try await c.sim.requests().filter {
            $0.method != "GET" && $0.path.hasSuffix("/deployments/checkout")
        }
        #expect(writes.isEmpty, "\(writes.map { "\($0.method) \($0.path)" })")
    }

    @Test("the chosen container's image changes; an unknown container or a foreign canary is refused")
    func containersAndOwnership() async throws {
        let c = try await Self.cluster()
        try await Self.workload(c, container: "sidecar").deployCanary(version: "1.37", weight: 5)
        let canary = try await c.client.deployments("shop").get("checkout-canary")
        #expect(canary.spec.template.spec.containers.map(\.image) == ["registry.example/checkout:v1", "busybox:1.37"])

        let unknown = await #expect(throws: KubernetesError.self) {
            try await Self.workload(c, container: "web").deployCanary(version: "v2", weight: 5)
        }
        #expect(unknown?.message == #"Deployment shop/checkout has no container named "web" (it has: app, sidecar)"#)

        try await c.client.deployments("shop").update("checkout-canary") {
            $0.metadata.labels?["app.kubernetes.io/managed-by"] = "helm"
        }
        let foreign = await #expect(throws: KubernetesError.self) {
            try await Self.workload(c).deployCanary(version: "v2", weight: 5)
        }
        #expect(foreign?.message.contains("exists and is not managed by Sluice") == true)
    }

    @Test("deployCanary survives 20% injected faults")
    func faults() async throws {
        let c = try await SimCluster(
            objects: [
                Manifests.deployment("checkout", image: "registry.example/checkout:v1", replicas: 4, namespace: "shop")
            ],
            options: .init(
                requestTimeout: .milliseconds(700), maxThrottleAttempts: 10, maxRetryAfter: .milliseconds(50),
                maxServerAttempts: 10, serverRetryDelay: .milliseconds(10)))
        try await c.sim.setFaults(fraction: 0.2, kinds: ["429", "500", "hang"], hangSeconds: 3, seed: 11)
        let workload = Self.workload(c)
        for weight in [5, 25, 50, 100] {
            try await workload.deployCanary(version: "v2", weight: weight)
            try await workload.waitUntilCanaryAvailable()
        }
        try await workload.promote(version: "v2")
        try await workload.scaleDownCanary()
        try await c.sim.setFaults(fraction: 0, kinds: [])
        #expect(try await c.client.deployments("shop").get("checkout-canary").spec.replicas == 0)
        #expect(
            try await c.client.deployments("shop").get("checkout").spec.template.spec.containers[0].image
                == "registry.example/checkout:v2")
    }
}
