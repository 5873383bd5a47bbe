import Foundation
import SluiceTestSupport
import Testing

/// Real kubectl 1.33 against the simulator: the proof that the simulator answers as an API server does.
/// Serialized: each test runs several 60 MB kubectl processes, too many at once on two shared cores.
@Suite("kubectl against the Kubernetes API simulator", .serialized)
struct KubectlFidelityTests {
    /// A running simulator with one Deployment and an HTTPRoute, a kubeconfig, and a HOME for kubectl.
    struct Fixture {
        let sim: KubeSimulator
        let kubeconfig: String
        let home: String

        init() async throws {
            sim = try await KubeSimulator(objects: [
                Manifests.deployment("checkout", image: "registry.example/checkout:v1")
            ])
            kubeconfig = try sim.writeKubeconfig()
            home = try makeTemporaryDirectory("kubectl-home")
        }

        /// Runs kubectl; `context` picks the user (admin, viewer, cert).
        func kubectl(_ arguments: String..., context: String? = nil) async throws -> ProcessResult {
            try await runKubectl(
                (context.map { ["--context", $0] } ?? []) + arguments, kubeconfig: kubeconfig, home: home)
        }

        func write(_ name: String, _ text: String) throws -> String {
            let path = home + "/" + name
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        /// `kubectl get ... -o json`, decoded.
        func json(_ arguments: String...) async throws -> [String: Any] {
            let result = try await runKubectl(arguments + ["-o", "json"], kubeconfig: kubeconfig, home: home)
            #expect(result.status == 0, "kubectl \(arguments): \(result.stderr)")
            return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
        }
    }

    @Test("get deploy prints the server's table")
    func getDeployments() async throws {
        let f = try await Fixture()
        try await waitUntil("the Deployment to be available") {
            let out = try await f.kubectl("get", "deploy")
            return out.stdout.contains("3/3")
        }
        let out = try await f.kubectl("get", "deploy")
        #expect(out.status == 0, "\(out.stderr)")
        let lines = out.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(lines.first == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"])
        #expect(lines.dropFirst().first?.prefix(4) == ["checkout", "3/3", "3", "3"])
        let wide = try await f.kubectl("get", "deploy", "-o", "wide")
        #expect(wide.stdout.contains("registry.example/checkout:v1"))
        #expect(wide.stdout.contains("app=checkout"))
    }

    @Test("get deploy NAME -o json gives the full object with server-set metadata")
    func getDeploymentJSON() async throws {
        let f = try await Fixture()
        let object = try await f.json("get", "deploy", "checkout")
        #expect(object["kind"] as? String == "Deployment")
        #expect(object["apiVersion"] as? String == "apps/v1")
        let meta = try #require(object["metadata"] as? [String: Any])
        #expect(meta["name"] as? String == "checkout")
        #expect(meta["namespace"] as? String == "default")
        #expect((meta["resourceVersion"] as? String).flatMap(Int.init) != nil, "resourceVersion is a numeric string")
        #expect((meta["uid"] as? String)?.count == 36)
        #expect(meta["generation"] as? Int == 1)
        #expect((meta["creationTimestamp"] as? String)?.hasSuffix("Z") == true)
        let missing = try await f.kubectl("get", "deploy", "nope", "-o", "json")
        #expect(missing.status != 0)
        #expect(missing.stderr.contains(#"Error from server (NotFound): deployments.apps "nope" not found"#))
    }

    @Test("apply creates, leaves unchanged, then configures; generation moves only on a spec change")
    func apply() async throws {
        let f = try await Fixture()
        let manifest = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, labels: {app: web}}
            spec:
              replicas: 2
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec:
                  containers:
                  - {name: web, image: "nginx:1.27", env: [{name: MODE, value: prod}]}
                  - {name: sidecar, image: "busybox:1.36"}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec:
              selector: {app: web}
              ports: [{port: 80, targetPort: 8080}]
            """
        let path = try f.write("web.yaml", manifest)
        let created = try await f.kubectl("apply", "--validate=false", "-f", path)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("deployment.apps/web created"))
        #expect(created.stdout.contains("service/web created"))
        let again = try await f.kubectl("apply", "--validate=false", "-f", path)
        #expect(again.stdout.contains("deployment.apps/web unchanged"), "\(again.stdout) \(again.stderr)")
        let changed = try f.write("web2.yaml", manifest.replacingOccurrences(of: "nginx:1.27", with: "nginx:1.28"))
        let configured = try await f.kubectl("apply", "--validate=false", "-f", changed)
        #expect(configured.stdout.contains("deployment.apps/web configured"), "\(configured.stderr)")
        #expect(configured.stdout.contains("service/web unchanged"))
        let web = try await f.json("get", "deploy", "web")
        let meta = try #require(web["metadata"] as? [String: Any])
        #expect(meta["generation"] as? Int == 2)
        let containers = try #require(
            ((web["spec"] as? [String: Any])?["template"] as? [String: Any]).flatMap {
                ($0["spec"] as? [String: Any])?["containers"] as? [[String: Any]]
            })
        #expect(containers.map { $0["image"] as? String } == ["nginx:1.28", "busybox:1.36"])
        #expect((containers[0]["env"] as? [[String: Any]])?.first?["value"] as? String == "prod")
    }

    @Test(
        "patch types",
        arguments: [
            (["--type", "merge", "-p", #"{"spec":{"replicas":5}}"#], "{.spec.replicas}", "5"),
            (
                [
                    "-p",
                    #"{"spec":{"template":{"spec":{"containers":"#
                        + #"[{"name":"app","image":"registry.example/checkout:v2"}]}}}}"#,
                ],
                "{.spec.template.spec.containers[*].image}", "registry.example/checkout:v2 busybox:1.36"
            ),
            (
                ["--type", "json", "-p", #"[{"op":"replace","path":"/spec/replicas","value":7}]"#],
                "{.spec.replicas}", "7"
            ),
            (
                ["--type", "merge", "-p", #"{"metadata":{"labels":{"tier":"web"}}}"#],
                "{.metadata.labels.tier}/{.metadata.generation}", "web/1"
            ),
        ])
    func patch(arguments: [String], jsonPath: String, expected: String) async throws {
        let f = try await Fixture()
        let out = try await runKubectl(
            ["patch", "deploy", "checkout"] + arguments, kubeconfig: f.kubeconfig, home: f.home)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("deployment.apps/checkout patched"))
        let read = try await f.kubectl("get", "deploy", "checkout", "-o", "jsonpath=" + jsonPath)
        #expect(read.stdout == expected)
    }

    @Test("a strategic merge patch on an HTTPRoute is refused as by a real server; merge and JSON patches work")
    func patchHTTPRoute() async throws {
        let f = try await Fixture()
        let route = try f.write("route.yaml", Manifests.httpRouteYAML)
        #expect(try await f.kubectl("apply", "--validate=false", "-f", route).status == 0)
        let strategic = try await f.kubectl("patch", "httproute", "checkout", "-p", #"{"spec":{"hostnames":["a"]}}"#)
        #expect(strategic.status != 0)
        #expect(strategic.stderr.contains("application/strategic-merge-patch+json is not supported"))
        let json = try await f.kubectl(
            "patch", "httproute", "checkout", "--type", "json", "-p",
            #"[{"op":"replace","path":"/spec/rules/0/backendRefs/1/weight","value":25}]"#)
        #expect(json.status == 0, "\(json.stderr)")
        let weights = try await f.kubectl(
            "get", "httproutes.gateway.networking.k8s.io", "checkout", "-o",
            "jsonpath={.spec.rules[0].backendRefs[*].weight}")
        #expect(weights.stdout == "100 25")
    }

    @Test("get httproutes.gateway.networking.k8s.io lists routes")
    func getHTTPRoutes() async throws {
        let f = try await Fixture()
        let route = try f.write("route.yaml", Manifests.httpRouteYAML)
        #expect(try await f.kubectl("apply", "--validate=false", "-f", route).status == 0)
        let out = try await f.kubectl("get", "httproutes.gateway.networking.k8s.io")
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.hasPrefix("NAME"))
        #expect(out.stdout.contains("checkout"))
        #expect(out.stdout.contains("shop.example"))
    }

    @Test("delete removes the object; a viewer token is forbidden to delete")
    func delete() async throws {
        let f = try await Fixture()
        let forbidden = try await f.kubectl("delete", "deploy", "checkout", context: "viewer")
        #expect(forbidden.status != 0)
        #expect(forbidden.stderr.contains(#"Error from server (Forbidden): deployments.apps "checkout" is forbidden"#))
        #expect(forbidden.stderr.contains(#"User "viewer" cannot delete resource "deployments""#))
        let out = try await f.kubectl("delete", "deploy", "checkout")
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains(#"deployment.apps "checkout" deleted"#))
        let none = try await f.kubectl("get", "deploy")
        #expect(none.stderr.contains("No resources found in default namespace."))
    }

    @Test("get events and describe deploy show events created for a Deployment")
    func events() async throws {
        let f = try await Fixture()
        let uid = try await f.kubectl("get", "deploy", "checkout", "-o", "jsonpath={.metadata.uid}").stdout
        let event = """
            {"apiVersion":"v1","kind":"Event","metadata":{"generateName":"checkout.","namespace":"default"},
             "involvedObject":{"apiVersion":"apps/v1","kind":"Deployment","name":"checkout","namespace":"default",
               "uid":"\(uid)"},
             "reason":"TrafficShifted","message":"canary weight is now 25%","type":"Normal",
             "source":{"component":"sluice"},"firstTimestamp":"2026-11-24T07:50:00Z",
             "lastTimestamp":"2026-11-24T07:50:00Z","count":1}
            """
        let created = try await f.kubectl("create", "--validate=false", "-f", try f.write("event.json", event))
        #expect(created.status == 0, "\(created.stderr)")
        let list = try await f.kubectl("get", "events")
        #expect(list.stdout.contains("TrafficShifted"))
        #expect(list.stdout.contains("deployment/checkout"))
        #expect(list.stdout.contains("canary weight is now 25%"))
        let describe = try await f.kubectl("describe", "deploy", "checkout")
        #expect(describe.status == 0, "\(describe.stderr)")
        #expect(describe.stdout.contains("Normal  TrafficShifted"))
    }

    @Test("a client certificate from the kubeconfig authenticates")
    func clientCertificate() async throws {
        let f = try await Fixture()
        let out = try await f.kubectl("get", "deploy", "checkout", "-o", "name", context: "cert")
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "deployment.apps/checkout\n")
        let users = try await f.sim.requests().compactMap(\.user)
        #expect(users.contains(KubeSimulator.certificateUser))
    }
}

/// Manifests the Kubernetes tests share.
enum Manifests {
    /// A Deployment with an `app` container (and a sidecar), `replicas` pods.
    static func deployment(_ name: String, image: String, replicas: Int = 3, namespace: String = "default") -> [String:
        Any]
    {
        [
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": ["name": name, "namespace": namespace, "labels": ["app": name]],
            "spec": [
                "replicas": replicas,
                "selector": ["matchLabels": ["app": name]],
                "template": [
                    "metadata": ["labels": ["app": name], "annotations": ["team": "payments"]],
                    "spec": [
                        "containers": [
                            [
                                "name": "app", "image": image, "ports": [["containerPort": 8080]],
                                "env": [["name": "MODE", "value": "prod"]],
                                "readinessProbe": ["httpGet": ["path": "/healthz", "port": 8080]],
                            ],
                            ["name": "sidecar", "image": "busybox:1.36"],
                        ]
                    ],
                ],
            ],
        ]
    }

    static let httpRouteYAML = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: checkout}
        spec:
          parentRefs: [{name: gateway}]
          hostnames: [shop.example]
          rules:
          - matches: [{path: {type: PathPrefix, value: /}}]
            backendRefs:
            - {name: checkout, port: 80, weight: 100}
            - {name: checkout-canary, port: 80, weight: 0}
        """
}
