import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing
import Yams

/// manifests/ as a Kustomize base, overlays and components, rendered with the `kustomize` built into real
/// kubectl: each overlay's objects parsed and checked (the pod locked down, probes on /healthz and /readyz,
/// the config's paths where the Deployment mounts them, the image tag the version, no Secret), the RBAC against
/// the calls the code makes, and `kubectl apply -k` against the Kubernetes simulator, twice, keeping the tokens.
struct KustomizeTests {
    static let manifests = repositoryRoot() + "/manifests"

    /// What the tests render: the shipped overlays, and the components added to the cluster-wide one.
    static let variants: [(name: String, overlay: String, components: [String])] = [
        ("cluster", "overlays/cluster", []),
        ("namespaced", "overlays/namespaced", []),
        ("cluster+tls", "overlays/cluster", ["components/tls"]),
        ("cluster+example-strategies", "overlays/cluster", ["components/example-strategies"]),
    ]
    static var names: [String] { variants.map(\.name) }
    /// Several replicas on PostgreSQL: rendered with the others, applied on a simulator of its own (switching a
    /// Deployment between Recreate and RollingUpdate is not what these tests are about).
    static let ha: (name: String, overlay: String, components: [String]) = ("ha", "overlays/ha", [])
    static var allNames: [String] { names + [ha.name] }
    /// Rendered only, never applied: the simulator serves no Prometheus Operator API to apply a PrometheusRule to
    /// (AlertRulesTests checks what it renders).
    static let renderedOnly: [(name: String, overlay: String, components: [String])] = [
        ("cluster+prometheus-rules", "overlays/cluster", ["components/prometheus-rules"])
    ]

    /// A directory to render or apply for `name`: the overlay itself, or a kustomization in a temporary folder
    /// that adds components to it, as a user's own kustomization would.
    static func directory(_ name: String) throws -> String {
        let variant = (variants + renderedOnly + [ha]).first { $0.name == name }!
        if variant.components.isEmpty { return manifests + "/" + variant.overlay }
        let dir = try makeTemporaryDirectory("kustomize-\(name.replacingOccurrences(of: "+", with: "-"))")
        // Kustomize takes relative paths only.
        let up = String(repeating: "../", count: dir.split(separator: "/").count)
        let path = { (part: String) in up + String((manifests + "/" + part).dropFirst()) }
        try """
        resources: [\(path(variant.overlay))]
        components: [\(variant.components.map(path).joined(separator: ", "))]

        """.write(toFile: dir + "/kustomization.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    /// Removes a kustomization `directory(_:)` made in a temporary folder (never an overlay of the repository).
    static func removeIfTemporary(_ dir: String) {
        if !dir.hasPrefix(manifests) { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// `kubectl kustomize` of `name`, as parsed objects.
    static func render(_ name: String) async throws -> [[String: Any]] {
        let home = try makeTemporaryDirectory("kubectl-home")
        defer { try? FileManager.default.removeItem(atPath: home) }
        let dir = try directory(name)
        defer { Self.removeIfTemporary(dir) }
        let result = try await runProcess(
            try kubectlBinary(), ["kustomize", dir], environment: ["HOME": home], directory: home)
        guard result.status == 0 else { throw SupportError("kubectl kustomize \(name): \(result.stderr)") }
        return try Yams.load_all(yaml: result.stdout).compactMap { $0 as? [String: Any] }
    }

    static func find(_ objects: [[String: Any]], _ kind: String, _ name: String) -> [String: Any]? {
        objects.first { $0["kind"] as? String == kind && ($0["metadata"] as? [String: Any])?["name"] as? String == name }
    }

    @Test(arguments: allNames)
    func theOverlayRendersALockedDownPodWhoseConfigFitsItsMounts(_ name: String) async throws {
        let objects = try await Self.render(name)
        let kinds = objects.compactMap { $0["kind"] as? String }
        // The HA overlay keeps its state in PostgreSQL: no volume, several replicas (theHAOverlay... checks them).
        let ha = name == "ha"
        for kind in ["Namespace", "ServiceAccount", "ConfigMap", ha ? "PodDisruptionBudget" : "PersistentVolumeClaim",
                     "Deployment", "Service"] {
            #expect(kinds.contains(kind), "\(name) lacks a \(kind)")
        }
        #expect(kinds.contains("PersistentVolumeClaim") != ha)
        // The tokens are created once with kubectl and never part of what is applied again.
        #expect(!kinds.contains("Secret"), "\(name) must not carry a Secret: a re-apply would replace the tokens")
        #expect((Self.find(objects, "ConfigMap", "sluice-strategies") != nil) == name.contains("example-strategies"))
        for object in objects where !["Namespace", "ClusterRole", "ClusterRoleBinding"].contains(object["kind"] as? String ?? "") {
            let namespace = (object["metadata"] as? [String: Any])?["namespace"] as? String
            let kind = object["kind"] as? String ?? ""
            #expect(namespace == (kind.hasPrefix("Role") ? "shop" : "sluice"), "\(name): \(kind) in \(namespace ?? "no namespace")")
        }

        let deployment = try #require(Self.find(objects, "Deployment", "sluice"))
        let spec = deployment["spec"] as? [String: Any] ?? [:]
        let (replicas, update) = ha ? (3, "RollingUpdate") : (1, "Recreate")
        #expect(spec["replicas"] as? Int == replicas && (spec["strategy"] as? [String: Any])?["type"] as? String == update)
        let pod = (spec["template"] as? [String: Any])?["spec"] as? [String: Any] ?? [:]
        let podSecurity = pod["securityContext"] as? [String: Any] ?? [:]
        #expect(podSecurity["runAsNonRoot"] as? Bool == true && podSecurity["runAsUser"] as? Int == 65532)
        #expect((podSecurity["seccompProfile"] as? [String: Any])?["type"] as? String == "RuntimeDefault")
        #expect(pod["serviceAccountName"] as? String == "sluice")
        let containers = pod["containers"] as? [[String: Any]] ?? []
        #expect(containers.count == 1)
        let container = containers.first ?? [:]
        #expect(container["image"] as? String == "sluice:\(SluiceVersion.current)", "the image tag is the version")
        let security = container["securityContext"] as? [String: Any] ?? [:]
        #expect(security["readOnlyRootFilesystem"] as? Bool == true && security["allowPrivilegeEscalation"] as? Bool == false)
        #expect((security["capabilities"] as? [String: Any])?["drop"] as? [String] == ["ALL"])
        #expect(((container["resources"] as? [String: Any])?["limits"] as? [String: Any])?["memory"] != nil)

        // The config the pod reads, and where its paths are mounted from.
        let configMap = try #require(Self.find(objects, "ConfigMap", "sluice-config"))
        let text = try #require((configMap["data"] as? [String: String])?["sluice.yaml"])
        let config = try #require(try Yams.load(yaml: text) as? [String: Any])
        let listen = config["listen"] as? String ?? ""
        let port = container["ports"].flatMap { ($0 as? [[String: Any]])?.first } ?? [:]
        #expect(listen == "0.0.0.0:\(port["containerPort"] as? Int ?? 0)" && port["name"] as? String == "api")
        let tls = config["tls"] as? [String: String]
        #expect((tls != nil) == name.contains("tls"))
        for (probe, path) in [("livenessProbe", "/healthz"), ("startupProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = (container[probe] as? [String: Any])?["httpGet"] as? [String: Any] ?? [:]
            #expect(get["path"] as? String == path && get["port"] as? String == "api", "\(name) \(probe)")
            #expect(get["scheme"] as? String == (tls == nil ? "HTTP" : "HTTPS"), "\(name) \(probe) scheme")
        }
        let mounts = container["volumeMounts"] as? [[String: Any]] ?? []
        let volumes = pod["volumes"] as? [[String: Any]] ?? []
        /// The volume mounted over `path` (the longest mount path that is a prefix of it) and its definition.
        func volume(for path: String) -> [String: Any]? {
            let mount = mounts.filter { path == $0["mountPath"] as? String || path.hasPrefix(($0["mountPath"] as? String ?? "") + "/") }
                .max { ($0["mountPath"] as? String ?? "").count < ($1["mountPath"] as? String ?? "").count }
            return volumes.first { $0["name"] as? String == mount?["name"] as? String }
        }
        #expect(volume(for: "/etc/sluice/sluice.yaml").flatMap { ($0["configMap"] as? [String: Any])?["name"] as? String } == "sluice-config")
        let tokens = volume(for: config["tokensFile"] as? String ?? "")
        #expect((tokens?["secret"] as? [String: Any])?["secretName"] as? String == "sluice-tokens", "\(name): tokensFile")
        if ha {
            // The database's password and CA from the `sluice-database` Secret, created once like the tokens.
            #expect(config["statePath"] == nil && volumes.allSatisfy { $0["persistentVolumeClaim"] == nil })
            let database = try #require(config["database"] as? String)
            let query = URLComponents(string: database)?.queryItems ?? []
            #expect(database.hasPrefix("postgres://sluice@") && query.contains(.init(name: "sslmode", value: "verify-full")))
            let secretFiles = [config["databasePasswordFile"] as? String, query.first { $0.name == "sslrootcert" }?.value]
            for file in secretFiles {
                #expect((volume(for: file ?? "")?["secret"] as? [String: Any])?["secretName"] as? String == "sluice-database")
            }
        } else {
            let state = volume(for: config["statePath"] as? String ?? "")
            #expect((state?["persistentVolumeClaim"] as? [String: Any])?["claimName"] as? String == "sluice-state")
        }
        let strategies = volume(for: config["strategiesDir"] as? String ?? "")?["configMap"] as? [String: Any]
        #expect(strategies?["name"] as? String == "sluice-strategies" && strategies?["optional"] as? Bool == true)
        if let tls {
            for file in [tls["cert"], tls["key"]] {
                #expect((volume(for: file ?? "")?["secret"] as? [String: Any])?["secretName"] as? String == "sluice-tls")
            }
        }
        // Everything else Sluice writes (SQLite's temporary files) goes to /tmp, an emptyDir.
        #expect(volume(for: "/tmp")?["emptyDir"] != nil)
        #expect(container["args"] as? [String] == ["serve", "--config", "/etc/sluice/sluice.yaml"])
    }

    /// overlays/ha: three replicas, never two on one node (required anti-affinity by hostname, matching the pods'
    /// labels), replaced one at a time without a surge pod (which would have no node left), and a disruption
    /// budget letting a drain evict one at a time.
    @Test
    func theHAOverlayRunsThreeReplicasOnePerNodeWithADisruptionBudget() async throws {
        let objects = try await Self.render("ha")
        let deployment = try #require(Self.find(objects, "Deployment", "sluice"))
        let spec = deployment["spec"] as? [String: Any] ?? [:]
        let rolling = (spec["strategy"] as? [String: Any])?["rollingUpdate"] as? [String: Any] ?? [:]
        #expect(rolling["maxUnavailable"] as? Int == 1 && rolling["maxSurge"] as? Int == 0, "\(rolling)")
        let template = spec["template"] as? [String: Any] ?? [:]
        let labels = (template["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
        let antiAffinity = ((template["spec"] as? [String: Any])?["affinity"] as? [String: Any])?["podAntiAffinity"]
        let required = (antiAffinity as? [String: Any])?["requiredDuringSchedulingIgnoredDuringExecution"]
        let terms = required as? [[String: Any]] ?? []
        #expect(terms.count == 1 && terms.first?["topologyKey"] as? String == "kubernetes.io/hostname")
        let selected = (terms.first?["labelSelector"] as? [String: Any])?["matchLabels"] as? [String: String] ?? [:]
        #expect(!selected.isEmpty && selected.allSatisfy { labels[$0.key] == $0.value }, "\(selected) vs \(labels)")

        let budget = try #require(Self.find(objects, "PodDisruptionBudget", "sluice"))
        #expect(budget["apiVersion"] as? String == "policy/v1")
        let budgetSpec = budget["spec"] as? [String: Any] ?? [:]
        #expect(budgetSpec["maxUnavailable"] as? Int == 1)
        let budgetSelects = (budgetSpec["selector"] as? [String: Any])?["matchLabels"] as? [String: String] ?? [:]
        #expect(!budgetSelects.isEmpty && budgetSelects.allSatisfy { labels[$0.key] == $0.value })
        #expect(Self.find(objects, "PersistentVolumeClaim", "sluice-state") == nil)
    }

    // MARK: RBAC from the code

    /// Every (API group, resource, verb) the code calls, as `group/resource:verb`, read from the sources: the
    /// resource types of SluiceKubernetes/Model, the `ResourceClient` values of SluiceKubernetes and
    /// SluiceProviders and the calls made on them (`update` is a GET, then a merge PATCH).
    static func verbsTheCodeCalls() throws -> Set<String> {
        let sources = repositoryRoot() + "/Sources"
        func files(_ dir: String) throws -> [String] {
            (FileManager.default.enumerator(atPath: sources + "/" + dir)?.allObjects as? [String] ?? [])
                .filter { $0.hasSuffix(".swift") }.map { sources + "/" + dir + "/" + $0 }
        }
        func matches(_ pattern: String, _ text: String) throws -> [[String]] {
            let regex = try NSRegularExpression(pattern: pattern)
            return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { match in
                (1..<match.numberOfRanges).map { Range(match.range(at: $0), in: text).map { String(text[$0]) } ?? "" }
            }
        }
        var types: [String: String] = [:]  // Deployment -> apps/deployments
        for file in try files("SluiceKubernetes/Model") {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            for m in try matches(#"struct (\w+)[^{]*\{(?:(?!\bstruct\b)[\s\S])*?static let resource = ResourceType\(\s*group: "([^"]*)",\s*version: "[^"]*",\s*plural: "([^"]*)""#, text) {
                types[m[0]] = m[1] + "/" + m[2]
            }
        }
        let clientFile = try String(contentsOfFile: sources + "/SluiceKubernetes/Client/KubernetesClient.swift", encoding: .utf8)
        var accessors: [String: String] = [:]  // deployments -> Deployment
        for m in try matches(#"func (\w+)\(_ namespace: String\? = nil\) -> ResourceClient<(\w+)>"#, clientFile) {
            accessors[m[0]] = m[1]
        }
        #expect(types.count >= 5 && accessors.count >= 5, "\(types) \(accessors)")
        let verbs = ["get": ["get"], "create": ["create"], "patch": ["patch"], "update": ["get", "patch"],
                     "delete": ["delete"], "list": ["list"]]
        var called: Set<String> = []
        for file in try files("SluiceKubernetes") + files("SluiceProviders") where !file.contains("/Client/") {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            var variables: [String: String] = [:]
            for m in try matches(#"(?:let|var) (\w+): ResourceClient<(\w+)>"#, text) { variables[m[0]] = m[1] }
            var calls: [(String, String)] = try matches(#"\b(\w+)\.(get|create|patch|update|delete|list)\("#, text)
                .compactMap { m in variables[m[0]].map { ($0, m[1]) } }
            calls += try matches(#"client\.(\w+)\([^)]*\)\.(get|create|patch|update|delete|list)\("#, text)
                .compactMap { m in accessors[m[0]].map { ($0, m[1]) } }
            for (type, method) in calls {
                let resource = try #require(types[type], "\(file): no resource type for \(type)")
                for verb in verbs[method] ?? [] { called.insert("\(resource):\(verb)") }
            }
        }
        return called
    }

    /// The rules of `objects`' roles as `group/resource:verb`.
    static func granted(_ objects: [[String: Any]], kind: String) -> Set<String> {
        var granted: Set<String> = []
        for object in objects where object["kind"] as? String == kind {
            for rule in object["rules"] as? [[String: Any]] ?? [] {
                #expect(rule["resourceNames"] == nil && !(rule["apiGroups"] as? [String] ?? []).contains("*"))
                for group in rule["apiGroups"] as? [String] ?? [] {
                    for resource in rule["resources"] as? [String] ?? [] {
                        for verb in rule["verbs"] as? [String] ?? [] { granted.insert("\(group)/\(resource):\(verb)") }
                    }
                }
            }
        }
        return granted
    }

    @Test
    func theCodeCallsWhatTheSimulatorSawItUse() throws {
        // The derivation finds each call site: the same set ManifestTests sees `sluice serve` use.
        #expect(
            try Self.verbsTheCodeCalls() == [
                "apps/deployments:get", "apps/deployments:create", "apps/deployments:patch", "apps/deployments:delete",
                "gateway.networking.k8s.io/httproutes:get", "gateway.networking.k8s.io/httproutes:patch",
                "networking.k8s.io/ingresses:get", "networking.k8s.io/ingresses:create",
                "networking.k8s.io/ingresses:patch", "networking.k8s.io/ingresses:delete", "/events:create",
            ])
    }

    @Test(arguments: allNames)
    func theRBACGrantsExactlyWhatTheCodeCalls(_ name: String) async throws {
        let objects = try await Self.render(name)
        let called = try Self.verbsTheCodeCalls()
        let namespaced = name == "namespaced"
        let granted = Self.granted(objects, kind: namespaced ? "Role" : "ClusterRole")
        #expect(granted == called, "unused: \(granted.subtracting(called).sorted()); missing: \(called.subtracting(granted).sorted())")
        if namespaced {
            #expect(!objects.contains { ($0["kind"] as? String ?? "").hasPrefix("Cluster") }, "nothing cluster-wide")
        }
        let binding = try #require(Self.find(objects, namespaced ? "RoleBinding" : "ClusterRoleBinding", "sluice"))
        #expect((binding["roleRef"] as? [String: Any])?["kind"] as? String == (namespaced ? "Role" : "ClusterRole"))
        let subjects = binding["subjects"] as? [[String: String]] ?? []
        #expect(subjects == [["kind": "ServiceAccount", "name": "sluice", "namespace": "sluice"]])
    }

    /// The simulator and a kubectl home for `kubectl apply -k` and `kubectl create`.
    struct Cluster {
        let sim: KubeSimulator
        let kubeconfig: String
        let home: String

        init() async throws {
            sim = try await KubeSimulator()
            kubeconfig = try sim.writeKubeconfig()
            home = try makeTemporaryDirectory("kubectl-home")
        }

        func kubectl(_ arguments: [String]) async throws -> ProcessResult {
            try await runKubectl(arguments, kubeconfig: kubeconfig, home: home)
        }

        /// `kubectl create` with kubectl 1.31: 1.32 and later send its body as protobuf, which the simulator does
        /// not read.
        func create(_ arguments: [String]) async throws -> ProcessResult {
            try await runProcess(
                try kubectlBinary(version: "1.31"), ["create"] + arguments,
                environment: ["HOME": home, "KUBECONFIG": kubeconfig], directory: home)
        }

        func stop() {
            sim.stop()
            try? FileManager.default.removeItem(atPath: home)
        }
    }

    // MARK: applied

    /// `kubectl apply -k` of every variant, then the tokens Secret created as docs/install.md says, then each
    /// applied again: the Secret is the one created, and the second apply changes nothing.
    @Test
    func applyingAgainNeverReplacesTheTokens() async throws {
        let cluster = try await Cluster()
        defer { cluster.stop() }
        let (kubectl, create, home) = (cluster.kubectl, cluster.create, cluster.home)
        #expect(try await create(["namespace", "shop"]).status == 0)
        for name in Self.names {
            let dir = try Self.directory(name)
            defer { Self.removeIfTemporary(dir) }
            let applied = try await kubectl(["apply", "--validate=false", "-k", dir])
            #expect(applied.status == 0, "kubectl apply -k \(name): \(applied.stderr)")
            #expect(applied.stdout.contains("deployment.apps/sluice"), "\(applied.stdout)")
        }
        let tokens = "tokens:\n  - {name: ci, role: ci, sha256: \(TokenHash.hex("a-token"))}\n"
        try tokens.write(toFile: home + "/tokens.yaml", atomically: true, encoding: .utf8)
        let created = try await create(["-n", "sluice", "secret", "generic", "sluice-tokens", "--from-file=" + home + "/tokens.yaml"])
        #expect(created.status == 0, "\(created.stderr)")
        for name in Self.names {
            // The first apply switches from the previous variant; the second finds it as it is.
            let dir = try Self.directory(name)
            defer { Self.removeIfTemporary(dir) }
            for pass in 1...2 {
                let again = try await kubectl(["apply", "--validate=false", "-k", dir])
                #expect(again.status == 0 && !again.stdout.contains("secret/"), "\(name): \(again.stdout)\(again.stderr)")
                if pass == 2 { #expect(again.stdout.contains("deployment.apps/sluice unchanged"), "\(name): \(again.stdout)") }
            }
        }
        let secret = try await kubectl(["get", "secret", "sluice-tokens", "-n", "sluice", "-o", "jsonpath={.data.tokens\\.yaml}"])
        #expect(Data(base64Encoded: secret.stdout).map { String(decoding: $0, as: UTF8.self) } == tokens)
    }

    /// overlays/ha applied as docs/install.md says (both Secrets created once, by hand), then applied again: it
    /// changes nothing and replaces neither Secret.
    @Test
    func theHAOverlayAppliesAndAppliedAgainKeepsBothSecrets() async throws {
        let cluster = try await Cluster()
        defer { cluster.stop() }
        let (kubectl, create, home) = (cluster.kubectl, cluster.create, cluster.home)
        let dir = try Self.directory(Self.ha.name)
        let applied = try await kubectl(["apply", "--validate=false", "-k", dir])
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout.contains("poddisruptionbudget.policy/sluice created"), "\(applied.stdout)")
        #expect(!applied.stdout.contains("persistentvolumeclaim"), "\(applied.stdout)")
        try "a-password\n".write(toFile: home + "/password", atomically: true, encoding: .utf8)
        let created = try await create(["-n", "sluice", "secret", "generic", "sluice-database", "--from-file=" + home + "/password"])
        #expect(created.status == 0, "\(created.stderr)")
        for pass in 1...2 {
            let again = try await kubectl(["apply", "--validate=false", "-k", dir])
            #expect(again.status == 0 && !again.stdout.contains("secret/"), "\(again.stdout)\(again.stderr)")
            if pass == 2 { #expect(again.stdout.contains("deployment.apps/sluice unchanged"), "\(again.stdout)") }
        }
        let secret = try await kubectl(["get", "secret", "sluice-database", "-n", "sluice", "-o", "jsonpath={.data.password}"])
        #expect(Data(base64Encoded: secret.stdout).map { String(decoding: $0, as: UTF8.self) } == "a-password\n")
    }
}
