import Foundation
import SluiceCore
import SluiceHTTP
import SluiceKubernetes
import SluiceTestSupport
import Testing

@Suite("KubernetesClient against the simulator")
struct KubernetesClientTests {
    static var routeObject: [String: Any] {
        [
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": ["name": "checkout", "namespace": "default", "labels": ["app": "checkout"]],
            "spec": [
                "parentRefs": [["name": "gateway"]],
                "hostnames": ["shop.example"],
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
                    ]
                ],
            ],
        ]
    }

    @Test("typed get, list, create, merge patch and delete for every resource Sluice uses")
    func crud() async throws {
        let c = try await SimCluster()
        let ns = "shop"
        // Services
        let service = Service(
            metadata: ObjectMeta(name: "checkout", labels: ["app": "checkout"]),
            spec: ServiceSpec(selector: ["app": "checkout"], ports: [ServicePort(port: 80, targetPort: 8080)]))
        let created = try await c.client.services(ns).create(service)
        #expect(created.metadata.uid != nil)
        #expect(created.metadata.namespace == ns)
        #expect(created.spec.additional["clusterIP"] != nil, "fields Sluice does not model are kept")
        // Ingresses
        let ingress = Ingress(
            metadata: ObjectMeta(name: "checkout"),
            spec: IngressSpec(
                ingressClassName: "nginx",
                rules: [
                    IngressRule(
                        host: "shop.example",
                        http: HTTPIngressRuleValue(paths: [
                            HTTPIngressPath(
                                path: "/",
                                backend: IngressBackend(
                                    service: IngressServiceBackend(name: "checkout", port: .init(number: 80))))
                        ]))
                ]))
        _ = try await c.client.ingresses(ns).create(ingress)
        // Leases
        let lease = try await c.client.leases(ns).create(
            Lease(metadata: ObjectMeta(name: "sluice"), spec: LeaseSpec(holderIdentity: "a", leaseDurationSeconds: 15)))
        let taken = try await c.client.leases(ns).patch(
            "sluice", mergePatch: .object(["spec": .object(["holderIdentity": "b"])]),
            resourceVersion: lease.metadata.resourceVersion)
        #expect(taken.spec.holderIdentity == "b")
        #expect(taken.spec.leaseDurationSeconds == 15)
        #expect(taken.metadata.resourceVersion != lease.metadata.resourceVersion)
        // Deployments
        _ = try await c.client.deployments(ns).create(
            try JSONDecoder().decode(
                Deployment.self,
                from: JSONSerialization.data(
                    withJSONObject: Manifests.deployment("checkout", image: "app:v1", namespace: ns))))
        let deployment = try await c.client.deployments(ns).get("checkout")
        #expect(deployment.spec.template.spec.containers.map(\.name) == ["app", "sidecar"])
        #expect(deployment.spec.template.spec.containers[0].additional["readinessProbe"] != nil)
        // Lists and selectors
        #expect(try await c.client.services(ns).list(labelSelector: "app=checkout").count == 1)
        #expect(try await c.client.services(ns).list(labelSelector: "app=other").isEmpty)
        #expect(try await c.client.ingresses(ns).list().map(\.metadata.name) == ["checkout"])
        #expect(try await c.client.deployments("default").list().isEmpty)
        // Delete
        try await c.client.services(ns).delete("checkout")
        let gone = await #expect(throws: KubernetesError.self) { try await c.client.services(ns).get("checkout") }
        #expect(gone?.code == .notFound)
        #expect(gone?.reason == "NotFound")
        #expect(gone?.message == #"services "checkout" not found"#)
        #expect(gone?.status == 404)
    }

    @Test(
        "update: a merge patch of what changed, with a resourceVersion precondition; rules keep all fields"
    )
    func updateKeepsUnknownFields() async throws {
        let c = try await SimCluster(objects: [Self.routeObject])
        let updated = try await c.client.httpRoutes().update("checkout") { route in
            route.spec.rules?[0].backendRefs?[0].weight = 75
            route.spec.rules?[0].backendRefs?[1].weight = 25
        }
        #expect(updated.spec.rules?[0].backendRefs?.map(\.weight) == [75, 25])
        let stored = try await c.client.httpRoutes().get("checkout")
        #expect(stored.spec.rules?[0].additional["matches"] != nil)
        #expect(stored.spec.rules?[0].additional["filters"] != nil)
        #expect(stored.spec.parentRefs?.count == 1)
        let patches = try await c.sim.requests().filter { $0.method == "PATCH" }
        #expect(patches.count == 1)
        #expect(patches.first?.contentType == "application/merge-patch+json")
        let body = try JSONSerialization.jsonObject(with: Data((patches.first?.body ?? "").utf8)) as? [String: Any]
        let meta = body?["metadata"] as? [String: Any]
        #expect(meta?["resourceVersion"] as? String != nil, "the patch carries the precondition")
        #expect(meta?.count == 1, "nothing else of metadata is sent")
        #expect(body?["status"] == nil)
        // No change, no write.
        _ = try await c.client.httpRoutes().update("checkout") { _ in }
        #expect(try await c.sim.requests().filter { $0.method == "PATCH" }.count == 1)
    }

    @Test("a stale resourceVersion is a conflict; update re-reads and retries")
    func conflicts() async throws {
        let holder = SimHolder()
        let c = try await SimCluster(
            objects: [Self.routeObject],
            http: InterferingHTTPClient(
                base: try CurlClient(), when: { $0.method == "PATCH" },
                before: { try await holder.sim?.touch(plural: "httproutes", namespace: "default", name: "checkout") }))
        holder.sim = c.sim
        let route = try await c.client.httpRoutes().get("checkout")
        let stale = await #expect(throws: KubernetesError.self) {
            try await c.client.httpRoutes().patch(
                "checkout", mergePatch: .object(["spec": .object(["hostnames": .array(["a"])])]),
                resourceVersion: route.metadata.resourceVersion)
        }
        #expect(stale?.code == .conflict)
        #expect(stale?.reason == "Conflict")
        #expect(stale?.message.contains("the object has been modified") == true)
        // Now another writer moves the object on before our next PATCH: update must re-read and succeed.
        holder.sim = c.sim
        let touched = InterferingHTTPClient(
            base: try CurlClient(), when: { $0.method == "PATCH" },
            before: { try await c.sim.touch(plural: "httproutes", namespace: "default", name: "checkout") })
        let client = KubernetesClient(config: c.client.config, http: touched)
        let updated = try await client.httpRoutes().update("checkout") { $0.spec.hostnames = ["b.example"] }
        #expect(updated.spec.hostnames == ["b.example"])
        #expect(updated.metadata.annotations?["sim.sluice.dev/touched"] != nil, "the other writer's change is kept")
        let statuses = try await c.sim.requests().filter { $0.method == "PATCH" }.map(\.status)
        #expect(statuses == [409, 409, 200])
    }

    @Test(
        "a Status body becomes a KubernetesError with its code, reason and message",
        arguments: [
            (
                "viewer", "create", KubernetesError.Code.forbidden, "Forbidden",
                #"User "viewer" cannot create resource "leases""#
            ),
            ("admin", "badname", .invalid, "Invalid", "metadata.name: Invalid value"),
            ("admin", "twice", .conflict, "AlreadyExists", #"leases.coordination.k8s.io "x" already exists"#),
            ("wrongtoken", "create", .unauthorized, "Unauthorized", "Unauthorized"),
        ])
    func statusErrors(user: String, action: String, code: KubernetesError.Code, reason: String, message: String)
        async throws
    {
        let c = try await SimCluster()
        let client: KubernetesClient
        if user == "wrongtoken" {
            var config = c.client.config
            config.credentials = .token("not-a-known-token")
            client = KubernetesClient(config: config, http: try CurlClient())
        } else {
            client = try c.client(context: user)
        }
        let name = action == "badname" ? "Not_Valid" : "x"
        if action == "twice" { _ = try await client.leases().create(Lease(metadata: ObjectMeta(name: name))) }
        let error = await #expect(throws: KubernetesError.self) {
            try await client.leases().create(Lease(metadata: ObjectMeta(name: name)))
        }
        #expect(error?.code == code)
        #expect(error?.reason == reason)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
        #expect(error?.description.contains(c.sim.token("admin")) == false)
        #expect(error?.description.contains("not-a-known-token") == false)
    }

    @Test("429 honours Retry-After and gives up after the bounded attempts")
    func throttling() async throws {
        let c = try await SimCluster(
            options: .init(requestTimeout: .seconds(5), maxThrottleAttempts: 3, maxRetryAfter: .seconds(5)))
        try await c.sim.setFaults(fraction: 1, kinds: ["429"], retryAfterSeconds: 1)
        let start = ContinuousClock.now
        let error = await #expect(throws: KubernetesError.self) { try await c.client.deployments().list() }
        let elapsed = ContinuousClock.now - start
        #expect(error?.code == .tooManyRequests)
        #expect(error?.reason == "TooManyRequests")
        #expect(elapsed >= .seconds(2), "two waits of Retry-After: 1 between three attempts")
        #expect(try await c.sim.requests().filter { $0.status == 429 }.count == 3)
    }

    @Test(
        "with 20% injected faults every call still succeeds",
        arguments: [["429"], ["500"], ["429", "500", "hang"]])
    func faults(kinds: [String]) async throws {
        let c = try await SimCluster(
            objects: [Self.routeObject],
            options: .init(
                requestTimeout: .milliseconds(700), maxConflictAttempts: 8, maxThrottleAttempts: 8,
                maxRetryAfter: .milliseconds(100), maxServerAttempts: 8, serverRetryDelay: .milliseconds(20)))
        try await c.sim.setFaults(fraction: 0.2, kinds: kinds, retryAfterSeconds: 1, hangSeconds: 3, seed: 7)
        for weight in stride(from: 0, through: 100, by: 10) {
            let route = try await c.client.httpRoutes().update("checkout") {
                $0.spec.rules?[0].backendRefs?[0].weight = 100 - weight
                $0.spec.rules?[0].backendRefs?[1].weight = weight
            }
            #expect(route.spec.rules?[0].backendRefs?[1].weight == weight)
        }
        let injected = try await c.sim.requests().filter { [0, 429, 500].contains($0.status) }.count
        #expect(injected > 0, "faults were injected")
    }

    @Test("injected faults fall on the same requests whatever the order requests arrive in")
    func faultsAreDeterministic() async throws {
        let c = try await SimCluster(
            objects: [Self.routeObject], options: .init(requestTimeout: .seconds(5), maxServerAttempts: 1))
        /// The answers to the GETs of each path, in order.
        func answers(_ paths: [String]) async throws -> [String: [Int]] {
            try await c.sim.setFaults(fraction: 0.3, kinds: ["500"], seed: 9)
            let before = try await c.sim.requests().count
            for name in paths { _ = try? await c.client.httpRoutes().get(name) }
            var byPath: [String: [Int]] = [:]
            for request in try await c.sim.requests().dropFirst(before) {
                byPath[request.path, default: []].append(request.status)
            }
            return byPath
        }
        let grouped = try await answers(Array(repeating: "checkout", count: 12) + Array(repeating: "other", count: 12))
        let interleaved = try await answers(Array(repeating: ["other", "checkout"], count: 12).flatMap { $0 })
        #expect(grouped == interleaved)
        #expect(grouped.values.joined().contains(500) && grouped.values.joined().contains(200))
    }

    @Test("a request that hangs times out as a transport error")
    func hang() async throws {
        let c = try await SimCluster(
            options: .init(
                requestTimeout: .milliseconds(300), maxServerAttempts: 2, serverRetryDelay: .milliseconds(10)))
        try await c.sim.setFaults(fraction: 1, kinds: ["hang"], hangSeconds: 60)
        let start = ContinuousClock.now
        let error = await #expect(throws: KubernetesError.self) { try await c.client.deployments().get("x") }
        #expect(error?.code == .transport)
        #expect(
            error?.message.contains("timed out") == true || error?.message.contains("Timeout") == true,
            "\(error?.message ?? "")")
        // Two attempts of 300 ms (0.6 s when alone); the bound is loose for a loaded 2-core machine and still far
        // below the 120 s two waits for the hang would take.
        #expect(ContinuousClock.now - start < .seconds(50))
    }

    @Test("client certificate from the kubeconfig authenticates")
    func clientCertificate() async throws {
        let c = try await SimCluster(context: "cert")
        _ = try await c.client.leases().create(Lease(metadata: ObjectMeta(name: "by-cert")))
        #expect(try await c.sim.requests().last?.user == KubeSimulator.certificateUser)
    }

    @Test("an untrusted server certificate fails; insecure-skip-tls-verify accepts it")
    func tls() async throws {
        let c = try await SimCluster()
        var config = c.client.config
        config.tls.ca = nil
        let strict = KubernetesClient(config: config, http: try CurlClient(), options: .init(maxServerAttempts: 1))
        let error = await #expect(throws: KubernetesError.self) { try await strict.leases().list() }
        #expect(error?.code == .transport)
        config.tls.insecureSkipVerify = true
        let lax = KubernetesClient(config: config, http: try CurlClient(warn: { _ in }))
        #expect(try await lax.leases().list().isEmpty)
    }

    @Test("a rotated token file is read again")
    func rotatedToken() async throws {
        let c = try await SimCluster()
        let dir = try makeTemporaryDirectory("token")
        try "stale-token".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        var config = c.client.config
        let file = TokenFile(path: dir + "/token")
        config.credentials = .tokenFile(file)
        let client = KubernetesClient(config: config, http: try CurlClient())
        let rejected = await #expect(throws: KubernetesError.self) { try await client.leases().list() }
        #expect(rejected?.code == .unauthorized)
        try c.sim.token("admin").write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        #expect(try await client.leases().list().isEmpty)
    }
}

/// Lets a closure built before the simulator exists reach it.
final class SimHolder: @unchecked Sendable {
    var sim: KubeSimulator?
}
