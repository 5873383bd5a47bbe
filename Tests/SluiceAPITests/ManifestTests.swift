import Foundation
import SluiceTestSupport
import Testing
import Yams

/// `manifests/`: the kinds the Kubernetes API simulator serves (Deployment, Service) go through real
/// `kubectl apply`; every document is checked for shape and the RBAC for least privilege; the strategy in
/// the ConfigMap is one `sluice validate` accepts.
struct ManifestTests {
    @Test
    func kubectlApplyAcceptsTheDeploymentAndService() async throws {
        let sim = try await KubeSimulator()
        defer { sim.stop() }
        let kubeconfig = try sim.writeKubeconfig()
        let home = try makeTemporaryDirectory("kubectl-home")
        defer { try? FileManager.default.removeItem(atPath: home) }
        let manifests = repositoryRoot() + "/manifests"
        // The simulator serves Deployments and Services; Namespace, RBAC, ConfigMap, Secret and PVC it does not.
        for file in ["40-deployment.yaml", "50-service.yaml"] {
            let result = try await runKubectl(
                ["apply", "--validate=false", "-f", manifests + "/" + file], kubeconfig: kubeconfig, home: home)
            #expect(result.status == 0, "kubectl apply -f \(file): \(result.stderr)")
        }
        let deployment = try await runKubectl(
            ["get", "deployment", "sluice", "-n", "sluice", "-o", "json"], kubeconfig: kubeconfig, home: home)
        #expect(deployment.status == 0, "\(deployment.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(deployment.stdout.utf8)) as? [String: Any]
        let spec = (object?["spec"] as? [String: Any])?["template"] as? [String: Any]
        let containers = ((spec?["spec"] as? [String: Any])?["containers"] as? [[String: Any]]) ?? []
        #expect(containers.first?["readinessProbe"] != nil && containers.first?["livenessProbe"] != nil)
        #expect((containers.first?["resources"] as? [String: Any])?["limits"] != nil)
    }

    @Test
    func everyDocumentHasItsShapeAndTheRBACIsLeast() throws {
        let manifests = repositoryRoot() + "/manifests"
        var kinds: [String] = []
        var rules: [[String: Any]] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: manifests).filter({ $0.hasSuffix(".yaml") }) {
            let text = try String(contentsOfFile: manifests + "/" + file, encoding: .utf8)
            for document in try Yams.load_all(yaml: text) {
                let object = document as? [String: Any]
                let metadata = object?["metadata"] as? [String: Any]
                #expect(object?["apiVersion"] is String && metadata?["name"] is String, "\(file): \(String(describing: object))")
                let kind = object?["kind"] as? String ?? "?"
                kinds.append(kind)
                if kind != "Namespace" && !kind.hasPrefix("Cluster") {
                    #expect(metadata?["namespace"] as? String == "sluice", "\(file) \(kind) belongs in namespace sluice")
                }
                rules += (object?["rules"] as? [[String: Any]]) ?? []
            }
        }
        for kind in ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                     "Deployment", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim"] {
            #expect(kinds.contains(kind), "manifests lack a \(kind)")
        }
        // What Sluice calls, per resource; anything else (or a wildcard) is more than it needs.
        let allowed: [String: Set<String>] = [
            "deployments": ["get", "create", "patch", "delete"], "httproutes": ["get", "patch"],
            "ingresses": ["get", "create", "patch", "delete"],
        ]
        #expect(!rules.isEmpty)
        for rule in rules {
            let verbs = Set(rule["verbs"] as? [String] ?? [])
            for resource in rule["resources"] as? [String] ?? [] {
                #expect(allowed[resource].map { verbs.isSubset(of: $0) } == true, "\(resource): \(verbs.sorted())")
            }
        }
    }

    @Test
    func theConfigMapStrategyIsValid() async throws {
        let text = try String(contentsOfFile: repositoryRoot() + "/manifests/20-config.yaml", encoding: .utf8)
        // The strategy is the block under `checkout.yaml: |`, indented by four spaces.
        let lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.contains("checkout.yaml: |") }) else {
            Issue.record("no checkout.yaml in the strategies ConfigMap")
            return
        }
        let body = lines[(start + 1)...].prefix { $0.hasPrefix("    ") || $0.isEmpty }.map { String($0.dropFirst(4)) }
        let dir = try makeTemporaryDirectory("manifest-strategy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body.joined(separator: "\n").write(toFile: dir + "/checkout.yaml", atomically: true, encoding: .utf8)
        let result = try await runSluice(["validate", dir + "/checkout.yaml"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
    }
}
