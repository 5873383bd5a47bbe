import Foundation
import SluiceTestSupport
import Testing

/// A bake on a Deployment target through the real binary: `sluice serve` on the Kubernetes simulator (kubectl
/// applies the application), v2 promoted and baking, then its check breaches (the simulator's pod start delay,
/// read through the `web` provider, goes over its `max`). The promotion is undone traffic first, and what the
/// cluster holds is read back with kubectl: the stable Deployment runs v1 again and the route sends it all traffic.
struct DeploymentBakeServeTests {
    @Test
    func aBreachInTheBakeGivesTheStableItsTemplateBackReadFromTheCluster() async throws {
        let sim = try await KubeSimulator(tokens: [.admin], availableAfter: .milliseconds(50))
        defer { sim.stop() }
        let kubeconfig = try sim.writeKubeconfig(current: "admin")
        let home = try makeTemporaryDirectory("kubectl-home")
        defer { try? FileManager.default.removeItem(atPath: home) }
        let dir = try makeTemporaryDirectory("sluice-deployment-bake")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ManifestTests.shop.write(toFile: dir + "/shop.yaml", atomically: true, encoding: .utf8)
        let applied = try await runKubectl(
            ["apply", "--validate=false", "-f", dir + "/shop.yaml"], kubeconfig: kubeconfig, home: home)
        #expect(applied.status == 0, "\(applied.stderr)")
        let server = try await ManifestTests.serve(
            in: dir, kubeconfig: kubeconfig, context: "admin", sim: sim, checkoutBake: "5m")
        defer { server.stop() }
        let url = try String(contentsOfFile: dir + "/url", encoding: .utf8)
        let client = { @Sendable (role: String) -> [String] in ["--server", url, "--token-file", dir + "/\(role).token"] }
        func image(of deployment: String) async throws -> String {
            let got = try await runKubectl(
                ["get", "deployment", deployment, "-n", "shop", "-o", "jsonpath={.spec.template.spec.containers[0].image}"],
                kubeconfig: kubeconfig, home: home)
            return got.stdout
        }
        func weights() async throws -> String {
            let got = try await runKubectl(
                ["get", "httproute", "checkout", "-n", "shop", "-o", "jsonpath={.spec.rules[0].backendRefs[*].weight}"],
                kubeconfig: kubeconfig, home: home)
            return got.stdout
        }

        let started = try await runSluice(["rollout", "start", "shop/checkout", "--version", "v2"] + client("ci"))
        #expect(started.status == 0, "\(started.stderr)")
        try await waitUntil("v2 to be promoted and bake", timeout: .seconds(60), interval: .milliseconds(200)) {
            let status = try await runSluice(["status", "shop/checkout"] + client("viewer"))
            guard !status.stdout.contains("RolledBack"), !status.stdout.contains("Failed") else {
                throw SupportError("the rollout ended before its bake: \(status.stdout)\n\(server.logTail())")
            }
            return status.stdout.contains("Baking")
        }
        #expect(try await image(of: "checkout") == "registry.example/checkout:v2")
        #expect(try await weights() == "100 0", "baking: stable, now v2, has all traffic")

        // The check breaches: pods start after 6 s, its max is 5. The previous template (v1) must start as the
        // canary with that delay, take all traffic, and only then does stable get it back.
        try await sim.setAvailableAfter(.seconds(6))
        try await waitUntil("the bake's rollback to end", timeout: .seconds(90), interval: .milliseconds(250)) {
            let status = try await runSluice(["status", "shop/checkout"] + client("viewer"))
            return status.stdout.contains("RolledBack")
        }
        #expect(try await image(of: "checkout") == "registry.example/checkout:v1", "stable runs v1 again")
        #expect(try await weights() == "100 0", "all traffic back on stable")
        let events = try await runSluice(["events", "shop/checkout", "-o", "json"] + client("viewer"))
        let types = events.stdout.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["type"] as? String
        }
        let undo = types.drop { $0 != "RollbackStarted" }
        #expect(
            Array(undo.filter { ["CanaryDeployed", "TrafficShifted", "StableRestored", "RolledBack"].contains($0) })
                == ["CanaryDeployed", "TrafficShifted", "StableRestored", "RolledBack"],
            "the undo, traffic first: \(types)")
        // The stable Deployment was written back to v1 only while the route sent everything to the canary running
        // v1, as the simulator saw the writes.
        var writes: [String] = []
        for request in try await sim.requests() where request.method != "GET" && (200..<300).contains(request.status) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any],
                let spec = object["spec"] as? [String: Any]
            else { continue }
            if request.path.hasSuffix("/httproutes/checkout"), let rules = spec["rules"] as? [[String: Any]] {
                let refs = rules.first?["backendRefs"] as? [[String: Any]] ?? []
                writes.append("route \(refs.first { $0["name"] as? String == "checkout-canary" }?["weight"] as? Int ?? -1)")
            } else if request.path.hasSuffix("/deployments/checkout") {
                let containers = ((spec["template"] as? [String: Any])?["spec"] as? [String: Any])?["containers"]
                let image = (containers as? [[String: Any]])?.first?["image"] as? String ?? "?"
                writes.append("stable \(image.split(separator: ":").last ?? "?")")
            }
        }
        let restored = try #require(writes.lastIndex(of: "stable v1"), "\(writes)")
        let promoted = try #require(writes.lastIndex(of: "stable v2"), "\(writes)")
        let routed = writes[promoted..<restored].filter { $0.hasPrefix("route") }
        #expect(routed.last == "route 100", "all traffic on the canary when stable is restored: \(writes)")
        #expect(writes[restored...].contains("route 0"), "then back to stable: \(writes)")
    }
}
