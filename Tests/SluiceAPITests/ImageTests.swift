import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The container image `scripts/image` builds (an OCI layout in .build-image/oci; scripts/test builds it with
/// `scripts/image --relink` before the tests, as a test cannot run `swift build` while `swift test` holds the
/// build folders). Unpacked with umoci and run as a container runtime would: its own
/// root, /proc, the image's user, working directory and command. And the Dockerfile kept in step with it.
struct ImageTests {
    static let root = repositoryRoot()
    static let layout = root + "/.build-image/oci"
    static let tag = SluiceVersion.current

    /// The OCI image config (`config` of the image's config blob): User, Entrypoint, Cmd, Labels...
    static func imageConfig() throws -> (config: [String: Any], layers: Int) {
        func json(_ path: String) throws -> [String: Any] {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SupportError("\(path) not found: build the image with `scripts/image --relink` after `swift build` (scripts/test does)")
            }
            return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        }
        func blob(_ digest: String) -> String { layout + "/blobs/" + digest.replacingOccurrences(of: ":", with: "/") }
        let manifests = try json(layout + "/index.json")["manifests"] as? [[String: Any]] ?? []
        guard
            let entry = manifests.first(where: {
                ($0["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] == tag
            }), let digest = entry["digest"] as? String
        else { throw SupportError("no image tagged \(tag) in \(layout): run `scripts/image --relink` after `swift build`") }
        let manifest = try json(blob(digest))
        let configDigest = (manifest["config"] as? [String: Any])?["digest"] as? String ?? ""
        let config = try json(blob(configDigest))["config"] as? [String: Any] ?? [:]
        return (config, (manifest["layers"] as? [Any])?.count ?? 0)
    }

    /// Unpacks the image's filesystem (all layers) into a fresh directory; returns its root.
    static func unpack() async throws -> String {
        let dir = try makeTemporaryDirectory("sluice-image")
        let result = try await run(
            "/usr/bin/umoci", ["unpack", "--image", "\(layout):\(tag)", dir + "/bundle"], timeout: .seconds(120),
            installHint: "scripts/setup (apt-get install umoci)")
        guard result.status == 0 else { throw SupportError("umoci unpack: \(result.stderr)") }
        let rootfs = dir + "/bundle/rootfs"
        // The mount point a runtime mounts /proc on (the Swift runtime reads /proc/self at start).
        try FileManager.default.createDirectory(atPath: rootfs + "/proc", withIntermediateDirectories: true)
        return rootfs
    }

    /// `unshare` arguments that run `command` inside `rootfs` as a runtime would: new mount and PID namespaces
    /// (the command is PID 1), /proc mounted, the image's working directory, user and group.
    static func contained(_ rootfs: String, user: String, workingDirectory: String, _ command: [String]) -> [String]
    {
        let ids = user.split(separator: ":").map(String.init)
        return [
            "--mount", "--pid", "--fork", "--kill-child=SIGTERM", "--mount-proc", "--root=\(rootfs)",
            "--wd=\(workingDirectory)", "--setgid=\(ids.last ?? "0")", "--setuid=\(ids.first ?? "0")",
        ] + command
    }

    @Test
    func theImageRunsSluiceAsANonRootPIDOneFromItsOwnFiles() async throws {
        let (config, layers) = try Self.imageConfig()
        let user = config["User"] as? String ?? ""
        let workingDirectory = config["WorkingDir"] as? String ?? ""
        let entrypoint = config["Entrypoint"] as? [String] ?? []
        let labels = config["Labels"] as? [String: String] ?? [:]
        #expect(user == "65532:65532", "runs as a non-root user")
        #expect(entrypoint == ["/usr/local/bin/sluice"])
        #expect(config["Cmd"] as? [String] == ["serve", "--config", "/etc/sluice/sluice.yaml"])
        #expect(workingDirectory == "/var/lib/sluice")
        #expect(labels["org.opencontainers.image.version"] == SluiceVersion.current, "\(labels)")
        #expect(!(labels["org.opencontainers.image.revision"] ?? "").isEmpty, "\(labels)")  // the commit; "unknown" outside a git checkout
        #expect(layers == 2, "libraries, then the binary")

        let rootfs = try await Self.unpack()
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: rootfs).deletingLastPathComponent().deletingLastPathComponent().path) }
        // The Swift runtime is linked into the binary: no libswift*.so beside it.
        let files = FileManager.default.enumerator(atPath: rootfs)?.allObjects as? [String] ?? []
        #expect(!files.contains { $0.contains("libswift") }, "no Swift runtime library beside the binary")
        #expect(files.contains("usr/lib/x86_64-linux-gnu/libcurl.so.4") && files.contains("etc/ssl/certs/ca-certificates.crt"))
        #expect(!files.contains { $0.hasPrefix("bin/") || $0.hasPrefix("usr/bin/") }, "no shell, no tools: \(files.filter { $0.contains("bin/") })")

        let version = try await run(
            "/usr/bin/unshare", Self.contained(rootfs, user: user, workingDirectory: workingDirectory, entrypoint + ["--version"]))
        #expect(version.status == 0 && version.stdout == SluiceVersion.current + "\n", "\(version.stdout)\(version.stderr)")

        // `sluice serve` with the files a pod mounts: the config, the tokens, the state folder (the image's own).
        let port = try freePort()
        let token = "image-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: rootfs + "/etc/sluice/tokens", withIntermediateDirectories: true)
        try "tokens:\n  - {name: viewer, role: viewer, sha256: \(TokenHash.hex(token))}\n"
            .write(toFile: rootfs + "/etc/sluice/tokens/tokens.yaml", atomically: true, encoding: .utf8)
        try "listen: 127.0.0.1:\(port)\ntokensFile: /etc/sluice/tokens/tokens.yaml\nstatePath: /var/lib/sluice/sluice.db\n"
            .write(toFile: rootfs + "/etc/sluice/sluice.yaml", atomically: true, encoding: .utf8)
        let environment = Dictionary(
            uniqueKeysWithValues: (config["Env"] as? [String] ?? []).compactMap { entry -> (String, String)? in
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                return parts.count == 2 ? (parts[0], parts[1]) : nil
            })
        let logs = try makeTemporaryDirectory("sluice-image-serve")
        defer { try? FileManager.default.removeItem(atPath: logs) }
        let server = try ManagedProcess(
            name: "sluice-in-image", executable: "/usr/bin/unshare",
            arguments: Self.contained(rootfs, user: user, workingDirectory: workingDirectory, entrypoint + (config["Cmd"] as? [String] ?? [])),
            environment: environment, directory: logs, installHint: "apt-get install util-linux")
        defer { server.stop(signal: SIGKILL) }
        let url = "http://127.0.0.1:\(port)"
        var ready = ""
        try await waitUntil("/readyz of sluice serve in the image", timeout: .seconds(60)) {
            guard server.isRunning else { throw SupportError("sluice serve exited:\n\(server.logTail())") }
            ready = try await run("/usr/bin/curl", ["-sf", "-m", "2", url + "/readyz"]).stdout
            return ready.contains("\"ready\"")
        }
        try token.write(toFile: logs + "/viewer.token", atomically: true, encoding: .utf8)
        let status = try await runSluice(["status", "--server", url, "--token-file", logs + "/viewer.token"])
        #expect(status.status == 0, "\(status.stdout)\(status.stderr)")
        let state = try FileManager.default.attributesOfItem(atPath: rootfs + "/var/lib/sluice/sluice.db")
        #expect((state[.ownerAccountID] as? NSNumber)?.intValue == 65532, "the store is written as the image's user")

        // SIGTERM to sluice, PID 1 of its namespace as in a container: a graceful exit, status 0.
        let children = try String(contentsOfFile: "/proc/\(server.pid)/task/\(server.pid)/children", encoding: .utf8)
        let child = Int32(children.split(separator: " ").first ?? "") ?? 0
        #expect(child > 0)
        kill(child, SIGTERM)
        try await waitUntil("sluice to stop on SIGTERM", timeout: .seconds(30)) { !server.isRunning }
        #expect(server.exitedCleanly, "\(server.logTail())")
    }

    /// The `swift build` command and the runtime packages: the Dockerfile's against scripts/image's.
    @Test
    func theDockerfileBuildsAndRunsWhatScriptsImageDoes() async throws {
        let dockerfile = try String(contentsOfFile: Self.root + "/Dockerfile", encoding: .utf8)
        // Instructions, with continuation lines joined.
        let instructions = dockerfile.replacingOccurrences(of: "\\\n", with: " ").split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        let printed = try await run("/bin/bash", [Self.root + "/scripts/image", "--print-build-command"])
        #expect(printed.status == 0, "\(printed.stderr)")
        let scriptBuild = printed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(scriptBuild.contains("-c release") && scriptBuild.contains("--static-swift-stdlib"), "\(scriptBuild)")
        let dockerBuild = instructions.compactMap { line -> String? in
            guard line.hasPrefix("RUN "), let start = line.range(of: "swift build -c") else { return nil }
            return line[start.lowerBound...].components(separatedBy: "&&")[0]
                .split(separator: " ").joined(separator: " ")
        }
        #expect(dockerBuild == [scriptBuild], "Dockerfile: \(dockerBuild); scripts/image: \(scriptBuild)")

        // The runtime stage installs scripts/image-packages, the list scripts/image checks the binary against.
        let stages = instructions.filter { $0.hasPrefix("FROM ") }
        #expect(stages.count == 2 && stages[0].hasPrefix("FROM swift:") && stages[0].hasSuffix("-bookworm AS build"))
        #expect(stages.last == "FROM debian:bookworm-slim", "\(stages)")
        #expect(instructions.contains("COPY scripts/image-packages /tmp/image-packages"))
        #expect(
            instructions.contains {
                $0.contains("grep -v '^#' /tmp/image-packages | xargs") && $0.contains("apt-get install")
            }, "the runtime stage installs the list")
        let listed = try String(contentsOfFile: Self.root + "/scripts/image-packages", encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        #expect(listed.contains("libcurl4") && listed.contains("libsqlite3-0") && listed.contains("ca-certificates"))
        let os = try String(contentsOfFile: "/etc/os-release", encoding: .utf8)
        #expect(os.contains("VERSION_CODENAME=bookworm"), "scripts/image copies this machine's Debian 12 libraries")

        // Every library the image's binary asks for comes from a listed package.
        let rootfs = try await Self.unpack()
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: rootfs).deletingLastPathComponent().deletingLastPathComponent().path) }
        let dynamic = try await run("/usr/bin/readelf", ["-d", rootfs + "/usr/local/bin/sluice"])
        let needed = dynamic.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }
            .compactMap { $0.split(separator: "[").last?.split(separator: "]").first.map(String.init) }
        #expect(needed.contains("libcurl.so.4") && !needed.contains { $0.hasPrefix("libswift") }, "\(needed)")
        for library in needed {
            let owner = try await run("/usr/bin/dpkg", ["-S", "/usr/lib/x86_64-linux-gnu/" + library])
            let owner2 = owner.status == 0 ? owner : try await run("/usr/bin/dpkg", ["-S", "/lib/x86_64-linux-gnu/" + library])
            let package = owner2.stdout.split(separator: ":").first.map(String.init) ?? "?"
            #expect(listed.contains(package), "\(library) comes from \(package), not in scripts/image-packages")
        }

        // The same user, entrypoint, command, working directory, port and version label.
        let (config, _) = try Self.imageConfig()
        #expect(instructions.contains("USER \(config["User"] as? String ?? "?")"))
        #expect(instructions.contains("WORKDIR \(config["WorkingDir"] as? String ?? "?")"))
        #expect(instructions.contains("ENTRYPOINT [\"/usr/local/bin/sluice\"]"))
        #expect(instructions.contains("CMD [\"serve\", \"--config\", \"/etc/sluice/sluice.yaml\"]"))
        #expect((config["ExposedPorts"] as? [String: Any])?.keys.first == "7700/tcp" && instructions.contains("EXPOSE 7700"))
        #expect(instructions.contains("ARG VERSION=\(SluiceVersion.current)"))
        #expect(dockerfile.contains("org.opencontainers.image.version=\"${VERSION}\""))
    }
}
