import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing
import Yams

/// `manifests/overlays/cluster`: real `kubectl apply -k` against the Kubernetes API simulator, every object
/// read back; the RBAC checked twice, on paper (only the verbs Sluice calls) and in use (`sluice serve` runs as
/// the manifests' ServiceAccount, authorized by the applied ClusterRole, or with overlays/namespaced the Role in
/// `shop`, and the verbs it used are exactly the role's); the example strategy is one `sluice validate` accepts.
/// KustomizeTests checks every overlay's shape.
struct ManifestTests {
    static let directory = repositoryRoot() + "/manifests/overlays/cluster"

    /// Every object the cluster overlay renders, as (kind, name, namespace).
    static func objects() async throws -> [(kind: String, name: String, namespace: String?)] {
        try await KustomizeTests.render("cluster").map { object in
            let metadata = object["metadata"] as? [String: Any]
            return (object["kind"] as? String ?? "?", metadata?["name"] as? String ?? "?", metadata?["namespace"] as? String)
        }
    }

    @Test
    func kubectlApplyAcceptsEveryManifestAndGetsEachObjectBack() async throws {
        let sim = try await KubeSimulator()
        defer { sim.stop() }
        let kubeconfig = try sim.writeKubeconfig()
        let home = try makeTemporaryDirectory("kubectl-home")
        defer { try? FileManager.default.removeItem(atPath: home) }
        let applied = try await runKubectl(
            ["apply", "--validate=false", "-k", Self.directory], kubeconfig: kubeconfig, home: home)
        #expect(applied.status == 0, "kubectl apply -k manifests/overlays/cluster: \(applied.stderr)")
        let objects = try await Self.objects()
        #expect(objects.count >= 8)
        for object in objects {
            let scope = object.namespace.map { ["-n", $0] } ?? []
            let got = try await runKubectl(
                ["get", object.kind.lowercased(), object.name, "-o", "json"] + scope, kubeconfig: kubeconfig, home: home
            )
            #expect(got.status == 0, "kubectl get \(object.kind) \(object.name): \(got.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(got.stdout.utf8)) as? [String: Any]
            let metadata = json?["metadata"] as? [String: Any]
            #expect(json?["kind"] as? String == object.kind && metadata?["name"] as? String == object.name)
            #expect(metadata?["namespace"] as? String == object.namespace, "\(object.kind) \(object.name) scope")
            #expect(applied.stdout.contains("/\(object.name) created"), "\(applied.stdout)")
        }
        let deployment = try await runKubectl(
            ["get", "deployment", "sluice", "-n", "sluice", "-o", "json"], kubeconfig: kubeconfig, home: home)
        let object = try JSONSerialization.jsonObject(with: Data(deployment.stdout.utf8)) as? [String: Any]
        let spec = (object?["spec"] as? [String: Any])?["template"] as? [String: Any]
        let containers = ((spec?["spec"] as? [String: Any])?["containers"] as? [[String: Any]]) ?? []
        #expect(containers.first?["readinessProbe"] != nil && containers.first?["livenessProbe"] != nil)
        #expect((containers.first?["resources"] as? [String: Any])?["limits"] != nil)
        // A second apply changes nothing it need not.
        let again = try await runKubectl(
            ["apply", "--validate=false", "-k", Self.directory], kubeconfig: kubeconfig, home: home)
        #expect(again.status == 0 && again.stdout.contains("clusterrole.rbac.authorization.k8s.io/sluice unchanged"))
    }

    @Test
    func everyDocumentHasItsShapeAndTheRBACIsLeast() async throws {
        var kinds: [String] = []
        var rules: [[String: Any]] = []
        for object in try await KustomizeTests.render("cluster") {
            let metadata = object["metadata"] as? [String: Any]
            #expect(object["apiVersion"] is String && metadata?["name"] is String, "\(object)")
            let kind = object["kind"] as? String ?? "?"
            kinds.append(kind)
            if kind != "Namespace" && !kind.hasPrefix("Cluster") {
                #expect(metadata?["namespace"] as? String == "sluice", "\(kind) belongs in namespace sluice")
            }
            rules += (object["rules"] as? [[String: Any]]) ?? []
        }
        for kind in [
            "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
            "Deployment", "Service", "ConfigMap", "PersistentVolumeClaim",
        ] {
            #expect(kinds.contains(kind), "manifests lack a \(kind)")
        }
        // What Sluice calls, per resource (read from the code; the test below checks it against a real run).
        let allowed: [String: Set<String>] = [
            "deployments": ["get", "create", "patch", "delete"], "httproutes": ["get", "patch"],
            "ingresses": ["get", "create", "patch", "delete"], "events": ["create"],
        ]
        #expect(!rules.isEmpty)
        var granted: Set<String> = []
        for rule in rules {
            let verbs = Set(rule["verbs"] as? [String] ?? [])
            #expect(rule["resourceNames"] == nil && !(rule["apiGroups"] as? [String] ?? []).contains("*"))
            for resource in rule["resources"] as? [String] ?? [] {
                #expect(allowed[resource].map { verbs.isSubset(of: $0) } == true, "\(resource): \(verbs.sorted())")
                granted.insert(resource)
            }
        }
        #expect(granted == Set(allowed.keys))
    }

    /// The manifests applied with real kubectl, then the real `sluice serve` with the manifests' ServiceAccount
    /// token: the simulator authorizes it only through the applied ClusterRole and binding. Two Deployment-target
    /// rollouts (Gateway API and NGINX Ingress) promote; a canary left from an older stable selector is replaced
    /// (delete). With `eventsFail`, every Event request answers 500: the rollouts still promote, the server logs
    /// a warning per event, and never the token.
    @Test(arguments: [(false, "cluster"), (true, "cluster"), (false, "namespaced")])
    func serveAsTheServiceAccountMirrorsEventsAndUsesExactlyItsRBAC(eventsFail: Bool, overlay: String) async throws {
        let account = KubeSimulator.Token.serviceAccount(namespace: "sluice", name: "sluice")
        let sim = try await KubeSimulator(tokens: [.admin, account], availableAfter: .milliseconds(50))
        defer { sim.stop() }
        let kubeconfig = try sim.writeKubeconfig(current: "admin")
        let home = try makeTemporaryDirectory("kubectl-home")
        defer { try? FileManager.default.removeItem(atPath: home) }
        let dir = try makeTemporaryDirectory("sluice-in-cluster")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.shop.write(toFile: dir + "/shop.yaml", atomically: true, encoding: .utf8)
        for (flag, path) in [("-f", dir + "/shop.yaml"), ("-k", repositoryRoot() + "/manifests/overlays/" + overlay)] {
            let applied = try await runKubectl(
                ["apply", "--validate=false", flag, path], kubeconfig: kubeconfig, home: home)
            #expect(applied.status == 0, "kubectl apply \(flag) \(path): \(applied.stderr)")
        }
        if eventsFail { try await sim.setFaults(fraction: 1, kinds: ["500"], pathContains: "/events") }

        let server = try await Self.serve(in: dir, kubeconfig: kubeconfig, context: account.context, sim: sim)
        defer { server.stop() }
        let url = try String(contentsOfFile: dir + "/url", encoding: .utf8)
        let client = { @Sendable (role: String) -> [String] in
            ["--server", url, "--token-file", dir + "/\(role).token"]
        }
        async let checkout = runSluice(
            ["rollout", "start", "shop/checkout", "--version", "v2", "--wait", "--timeout", "90s"] + client("ci"),
            timeout: .seconds(120))
        async let search = runSluice(
            ["rollout", "start", "shop/search", "--version", "v2", "--wait", "--timeout", "90s"] + client("ci"),
            timeout: .seconds(120))
        for result in [try await checkout, try await search] {
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)\n\(server.logTail())")
        }
        let forbidden = try await sim.requests().filter { $0.user == account.user && $0.status == 403 }
        #expect(forbidden.isEmpty, "\(forbidden.map { "\($0.method) \($0.path)" })")

        var expected: [String: (type: String, strategy: String)] = [:]
        for strategy in ["checkout", "search"] {
            let listed = try await runSluice(["events", "shop/\(strategy)", "-o", "json"] + client("viewer"))
            for line in listed.stdout.split(separator: "\n") {
                let event = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                let seq = event?["seq"] as? Int ?? -1
                expected["\(strategy).sluice-\(seq)"] = (event?["type"] as? String ?? "?", strategy)
            }
        }
        #expect(expected.values.filter { $0.type == "Promoted" }.count == 2, "\(expected)")

        if eventsFail {
            try await waitUntil("a warning for every event", timeout: .seconds(60)) {
                server.logTail(1 << 20).components(separatedBy: "Kubernetes Event not mirrored").count - 1
                    >= expected.count
            }
            let log = server.logTail(1 << 20)
            #expect(log.contains("InternalError") || log.contains("500"), "\(log.suffix(2000))")
            #expect(!log.contains(account.value) && !log.contains(sim.token("admin")), "no token in the log")
            try await sim.setFaults(fraction: 0, kinds: [])
            let shown = try await runKubectl(["get", "events", "-n", "shop"], kubeconfig: kubeconfig, home: home)
            #expect(shown.status == 0 && !shown.stdout.contains("Promoted"), "\(shown.stdout)\(shown.stderr)")
            return
        }

        // Every event, on its Deployment, as kubectl shows it: reason = type, Normal or Warning.
        var mirrored: [String: [String: Any]] = [:]
        try await waitUntil("every event mirrored", timeout: .seconds(60), interval: .milliseconds(200)) {
            let got = try await runKubectl(
                ["get", "events", "-n", "shop", "-o", "json"], kubeconfig: kubeconfig, home: home)
            let items = (try JSONSerialization.jsonObject(with: Data(got.stdout.utf8)) as? [String: Any])?["items"]
            for item in items as? [[String: Any]] ?? [] {
                if let name = (item["metadata"] as? [String: Any])?["name"] as? String { mirrored[name] = item }
            }
            return Set(mirrored.keys) == Set(expected.keys)
        }
        for (name, event) in expected {
            let item = mirrored[name]
            let involved = item?["involvedObject"] as? [String: Any]
            #expect(item?["reason"] as? String == event.type)
            #expect(involved?["kind"] as? String == "Deployment" && involved?["name"] as? String == event.strategy)
            let warning = ["RollbackStarted", "RolledBack", "Failed", "CheckBreached"].contains(event.type)
            #expect(item?["type"] as? String == (warning ? "Warning" : "Normal"), "\(name)")
        }
        let table = try await runKubectl(["get", "events", "-n", "shop"], kubeconfig: kubeconfig, home: home)
        for deployment in ["checkout", "search"] {
            let line = table.stdout.split(separator: "\n").first {
                $0.contains("Promoted") && $0.contains("deployment/\(deployment)")
            }
            #expect(line?.contains("Normal") == true, "\(table.stdout)")
        }
        let describe = try await runKubectl(
            ["describe", "deploy", "checkout", "-n", "shop"], kubeconfig: kubeconfig, home: home)
        for reason in ["RolloutStarted", "CanaryDeployed", "StageStarted", "Promoted"] {
            #expect(describe.stdout.contains(reason), "\(reason) in \(describe.stdout)")
        }
        // Created in seq order: one worker, fed from the committed log.
        let posted = try await sim.requests().filter { $0.method == "POST" && $0.path.hasSuffix("/events") }
            .compactMap { request -> Int? in
                let body = try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any]
                let name = (body?["metadata"] as? [String: Any])?["name"] as? String
                return name.flatMap { Int($0.split(separator: "-").last ?? "") }
            }
        #expect(posted.count == expected.count && posted == posted.sorted(), "\(posted)")

        // The verbs Sluice used are exactly those its role grants: nothing missing, nothing unused.
        let role = try await runKubectl(
            overlay == "namespaced" ? ["get", "role", "sluice", "-n", "shop", "-o", "json"]
                : ["get", "clusterrole", "sluice", "-o", "json"], kubeconfig: kubeconfig, home: home)
        let rules = (try JSONSerialization.jsonObject(with: Data(role.stdout.utf8)) as? [String: Any])?["rules"]
        var granted: Set<String> = []
        for rule in rules as? [[String: Any]] ?? [] {
            for group in rule["apiGroups"] as? [String] ?? [] {
                for resource in rule["resources"] as? [String] ?? [] {
                    for verb in rule["verbs"] as? [String] ?? [] { granted.insert("\(group)/\(resource):\(verb)") }
                }
            }
        }
        let used = try await sim.verbsUsed(by: account.user)
        #expect(
            used == granted,
            "unused: \(granted.subtracting(used).sorted()); missing: \(used.subtracting(granted).sorted())")
    }

    /// Starts `sluice serve` in `dir` (config, tokens ci and viewer, the two strategies) on the simulator's
    /// kubeconfig with `context`; writes its URL to `dir/url` and returns once it answers.
    static func serve(
        in dir: String, kubeconfig: String, context: String, sim: KubeSimulator, checkoutBake: String? = nil
    ) async throws -> ManagedProcess {
        let port = try freePort()
        var tokens = "tokens:\n"
        for role in ["ci", "viewer"] {
            let token = "manifest-\(role)-\(UUID().uuidString)"
            tokens += "  - {name: \(role)-bot, role: \(role), sha256: \(TokenHash.hex(token))}\n"
            try token.write(toFile: dir + "/\(role).token", atomically: true, encoding: .utf8)
        }
        try tokens.write(toFile: dir + "/tokens.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/strategies", withIntermediateDirectories: true)
        try Self.strategy(
            "checkout",
            traffic: "gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}",
            sim: sim, bake: checkoutBake
        )
        .write(toFile: dir + "/strategies/checkout.yaml", atomically: true, encoding: .utf8)
        try Self.strategy("search", traffic: "nginxIngress: {ingress: search, canaryService: search-canary}", sim: sim)
            .write(toFile: dir + "/strategies/search.yaml", atomically: true, encoding: .utf8)
        try """
        listen: 127.0.0.1:\(port)
        tokensFile: tokens.yaml
        statePath: state.db
        kubeconfig: \(kubeconfig)
        context: \(context)
        strategiesDir: strategies

        """.write(toFile: dir + "/sluice.yaml", atomically: true, encoding: .utf8)
        let url = "http://127.0.0.1:\(port)"
        try url.write(toFile: dir + "/url", atomically: true, encoding: .utf8)
        let process = try ManagedProcess(
            name: "sluice-serve", executable: try sluiceBinary(),
            arguments: ["serve", "--config", dir + "/sluice.yaml"],
            directory: dir, installHint: "swift build")
        do {
            try await waitUntil("sluice serve to be ready", timeout: .seconds(30)) {
                guard process.isRunning else { throw SupportError("sluice serve exited:\n\(process.logTail())") }
                return try await runSluice(["status", "--server", url, "--token-file", dir + "/viewer.token"]).status
                    == 0
            }
        } catch {
            process.stop()
            throw SupportError("\(error)\n\(process.logTail())")
        }
        return process
    }

    /// A Deployment-target strategy in namespace shop: 50 % then 100 %, one-second holds, checked against a
    /// number the simulator serves (its pod start delay, through the `web` provider); `bake` a duration to bake for.
    static func strategy(_ name: String, traffic: String, sim: KubeSimulator, bake: String? = nil) -> String {
        """
        apiVersion: sluice.dev/v1
        kind: Strategy
        metadata: {name: \(name), namespace: shop}
        spec:
          target: {deployment: \(name), container: app}
          traffic:
            \(traffic)
          stages:
            - {name: half, weight: 50, hold: 1s}
            - {name: full, weight: 100, hold: 1s}
          analysis:
            interval: 1s
            providers:
              sim:
                web: {url: "\(sim.controlURL)/_sim/config", jsonPath: availableAfterSeconds}
            checks:
              - name: pod-start-seconds
                query: config
                max: 5
        \(bake.map { "  bake: {duration: \($0)}\n" } ?? "")
        """
    }

    /// A Deployment in namespace shop selecting `app: APP`, one container `app` running `registry.example/IMAGE`;
    /// `labels` goes into its metadata as is.
    static func deployment(_ name: String, replicas: Int, app: String, image: String, labels: String = "") -> String {
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: \(name), namespace: shop\(labels)}
        spec:
          replicas: \(replicas)
          selector: {matchLabels: {app: \(app)}}
          template:
            metadata: {labels: {app: \(app)}}
            spec: {containers: [{name: app, image: "registry.example/\(image)"}]}
        """
    }

    /// The application side: two stable Deployments, the HTTPRoute and the Ingress their routers change, and a
    /// Sluice-managed canary whose selector no longer fits (the stable selector changed since), which Sluice
    /// deletes and creates again.
    static let shop = """
        \(deployment("checkout", replicas: 4, app: "checkout", image: "checkout:v1"))
        ---
        \(deployment(
            "checkout-canary", replicas: 0, app: "checkout-v0-canary", image: "checkout:v0",
            labels: ", labels: {app.kubernetes.io/managed-by: sluice}"))
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: checkout, namespace: shop}
        spec:
          parentRefs: [{name: gateway}]
          rules:
            - matches: [{path: {type: PathPrefix, value: /}}]
              backendRefs: [{name: checkout, port: 80, weight: 100}, {name: checkout-canary, port: 80, weight: 0}]
        ---
        \(deployment("search", replicas: 2, app: "search", image: "search:v1"))
        ---
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: search, namespace: shop}
        spec:
          ingressClassName: nginx
          rules:
            - host: search.example
              http:
                paths:
                  - {path: /, pathType: Prefix, backend: {service: {name: search, port: {number: 80}}}}

        """

    @Test
    func theConfigMapStrategyIsValid() async throws {
        let text = try String(
            contentsOfFile: repositoryRoot() + "/manifests/components/example-strategies/strategies.yaml", encoding: .utf8)
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
