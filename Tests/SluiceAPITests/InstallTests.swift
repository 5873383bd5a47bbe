import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// README "Install in a cluster", run as written: the image (built by `scripts/image --relink` before the tests)
/// pushed with skopeo to a real registry (Debian's `docker-registry`, on loopback), the user's kustomization
/// applied to the Kubernetes simulator, the tokens Secret created, the rollout status awaited. One line differs
/// from the README: `REGISTRY=` names the loopback registry; `kubectl` is 1.31 with `apply --validate=false`
/// (the simulator's limits). The commands from the port-forward on need a real cluster's pods.
struct InstallTests {
    static let root = repositoryRoot()

    /// The shell lines of the README's install block.
    static func readmeCommands() throws -> [String] {
        let readme = try String(contentsOfFile: root + "/README.md", encoding: .utf8)
        guard let section = readme.components(separatedBy: "\n## Install in a cluster\n").dropFirst().first,
            let block = section.components(separatedBy: "```sh\n").dropFirst().first?.components(separatedBy: "\n```").first
        else { throw SupportError("README.md has no ```sh block under ## Install in a cluster") }
        return block.components(separatedBy: "\n")
    }

    @Test
    func theReadmeInstallCommandsPushApplyAndStartSluice() async throws {
        let lines = try Self.readmeCommands()
        #expect(lines.first?.hasPrefix("scripts/image ") == true, "the first step builds the image: \(lines.first ?? "")")
        let forward = try #require(lines.firstIndex { $0.contains("port-forward") })
        #expect(lines[forward...].contains { $0.hasPrefix("sluice rollout start") }, "the first rollout follows")
        let registryLine = try #require(lines.firstIndex { $0.hasPrefix("REGISTRY=") })

        let dir = try makeTemporaryDirectory("readme-install")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A clone's layout: the manifests, the image, the strategies.
        for name in ["manifests", ".build-image", "strategies"] {
            try FileManager.default.createSymbolicLink(atPath: dir + "/" + name, withDestinationPath: Self.root + "/" + name)
        }
        let bin = dir + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        // kubectl 1.31: 1.32 and later send `create` bodies as protobuf, which the simulator does not read. The
        // simulator serves no OpenAPI schema, so `apply` runs without client-side validation.
        try """
            #!/bin/sh
            if [ "$1" = apply ]; then shift; exec \(try kubectlBinary(version: "1.31")) apply --validate=false "$@"; fi
            exec \(try kubectlBinary(version: "1.31")) "$@"

            """.write(toFile: bin + "/kubectl", atomically: true, encoding: .utf8)
        chmod(bin + "/kubectl", 0o755)
        try FileManager.default.createSymbolicLink(atPath: bin + "/sluice", withDestinationPath: try sluiceBinary())

        // The registry: Debian's docker-registry (the CNCF distribution registry) on loopback, serving HTTPS with
        // the simulator's certificate for 127.0.0.1; skopeo trusts its CA through SSL_CERT_FILE.
        let sim = try await KubeSimulator()
        defer { sim.stop() }
        let kubeconfig = try sim.writeKubeconfig()
        let port = try freePort()
        try """
        version: 0.1
        storage: {filesystem: {rootdirectory: \(dir)/registry-data}}
        http: {addr: 127.0.0.1:\(port), tls: {certificate: \(sim.directory)/server.crt, key: \(sim.directory)/server.key}}

        """.write(toFile: dir + "/registry.yml", atomically: true, encoding: .utf8)
        let registry = try ManagedProcess(
            name: "docker-registry", executable: "/usr/bin/docker-registry", arguments: ["serve", dir + "/registry.yml"],
            directory: dir, installHint: "scripts/setup (apt-get install docker-registry)")
        defer { registry.stop() }
        try await waitUntil("the registry to answer", timeout: .seconds(30)) {
            guard registry.isRunning else { throw SupportError("docker-registry exited: \(registry.logTail())") }
            return try await run("/usr/bin/curl", ["-sf", "-m", "2", "--cacert", sim.caPath, "https://127.0.0.1:\(port)/v2/"]).status == 0
        }

        var script = Array(lines[1..<forward])
        script[registryLine - 1] = "REGISTRY=127.0.0.1:\(port)/team"
        try ("set -euo pipefail\n" + script.joined(separator: "\n") + "\n")
            .write(toFile: dir + "/install.sh", atomically: true, encoding: .utf8)
        let environment = [
            "HOME": dir, "KUBECONFIG": kubeconfig, "SSL_CERT_FILE": sim.caPath,
            "PATH": bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
        ]
        let ran = try await runProcess("/bin/bash", [dir + "/install.sh"], environment: environment, directory: dir, timeout: .seconds(300))
        #expect(ran.status == 0, "\(ran.stdout)\n\(ran.stderr)\n\(registry.logTail())")

        // The registry holds the image's layers, with its version label.
        let inspected = try await runProcess(
            "/usr/bin/skopeo", ["inspect", "docker://127.0.0.1:\(port)/team/sluice:\(SluiceVersion.current)"],
            environment: environment, directory: dir)
        #expect(inspected.status == 0, "\(inspected.stderr)")
        let remote = try JSONSerialization.jsonObject(with: Data(inspected.stdout.utf8)) as? [String: Any] ?? [:]
        #expect((remote["Labels"] as? [String: String])?["org.opencontainers.image.version"] == SluiceVersion.current)
        let local = try await runProcess(
            "/usr/bin/skopeo", ["inspect", "oci:\(Self.root)/.build-image/oci:\(SluiceVersion.current)"],
            environment: environment, directory: dir)
        let localLayers = (try JSONSerialization.jsonObject(with: Data(local.stdout.utf8)) as? [String: Any])?["Layers"] as? [String]
        #expect(localLayers != nil && remote["Layers"] as? [String] == localLayers, "the pushed layers are the built ones")

        // The Deployment runs the pushed image; the Secret holds the hash of the token the README made.
        let home = dir + "/kubectl-home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let image = try await runKubectl(
            ["-n", "sluice", "get", "deploy", "sluice", "-o", "jsonpath={.spec.template.spec.containers[0].image}"],
            kubeconfig: kubeconfig, home: home)
        #expect(image.stdout == "127.0.0.1:\(port)/team/sluice:\(SluiceVersion.current)", "\(image.stdout)\(image.stderr)")
        let token = try String(contentsOfFile: dir + "/admin.token", encoding: .utf8)
        let secret = try await runKubectl(
            ["-n", "sluice", "get", "secret", "sluice-tokens", "-o", "jsonpath={.data.tokens\\.yaml}"],
            kubeconfig: kubeconfig, home: home)
        let tokens = Data(base64Encoded: secret.stdout).map { String(decoding: $0, as: UTF8.self) } ?? ""
        #expect(token.count >= 40 && tokens == "tokens:\n  - {name: admin, role: admin, sha256: \(TokenHash.hex(token))}\n")
    }
}
