import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The Kubernetes API simulator (Tests/Simulators/kube/kube_sim.py) started for one test: HTTPS with a
/// fresh CA on a free port, bearer tokens with per-token verbs, a client certificate user, a plain-HTTP
/// control port for faults and Deployment status, and kubeconfig files for kubectl and Sluice.
public final class KubeSimulator: @unchecked Sendable {
    /// A bearer token the simulator accepts and the verbs it may use (`*` for all).
    public struct Token: Sendable {
        public var user: String
        public var value: String
        public var verbs: [String]
        /// Authorized by the RBAC objects stored in the simulator (Roles, ClusterRoles and their bindings)
        /// instead of `verbs`.
        public var rbac: Bool
        /// The kubeconfig context (and user entry) of this token.
        public var context: String
        public init(user: String, value: String, verbs: [String], rbac: Bool = false, context: String? = nil) {
            self.user = user
            self.value = value
            self.verbs = verbs
            self.rbac = rbac
            self.context = context ?? user
        }
        /// A ServiceAccount's token (user `system:serviceaccount:NS:NAME`, context `NAME`), authorized only by
        /// the RBAC objects applied to the simulator, as a real API server does.
        public static func serviceAccount(namespace: String, name: String) -> Token {
            Token(
                user: "system:serviceaccount:\(namespace):\(name)", value: "sa-\(name)-token-\(UUID().uuidString)",
                verbs: [], rbac: true, context: name)
        }
        /// May do anything.
        public static let admin = Token(user: "admin", value: "admin-token-\(UUID().uuidString)", verbs: ["*"])
        /// May only read.
        public static let viewer = Token(
            user: "viewer", value: "viewer-token-\(UUID().uuidString)", verbs: ["get", "list"])
    }

    /// The common name of the client certificate the simulator accepts (all verbs).
    public static let certificateUser = "sluice-cert-user"

    public let directory: String
    /// `https://127.0.0.1:PORT`.
    public let url: String
    public let port: Int
    /// `http://127.0.0.1:PORT` of the control endpoints (`/_sim/...`).
    public let controlURL: String
    /// PEM files: the CA that signed the server certificate, and a client certificate and key it accepts.
    public let caPath: String
    public let clientCertificatePath: String
    public let clientKeyPath: String
    public let tokens: [Token]
    private let process: ManagedProcess

    /// Starts the simulator and waits until it answers. `objects` are JSON manifests created at start.
    public init(
        tokens: [Token] = [.admin, .viewer], availableAfter: Duration = .milliseconds(200),
        objects: [[String: Any]] = [], tls: Bool = true
    ) async throws {
        let directory = try makeTemporaryDirectory("kube-sim")
        self.directory = directory
        self.tokens = tokens
        caPath = directory + "/ca.crt"
        clientCertificatePath = directory + "/client.crt"
        clientKeyPath = directory + "/client.key"
        if tls {
            let shared = try Self.certificates.get()
            for file in ["ca.crt", "server.crt", "server.key", "client.crt", "client.key"] {
                try FileManager.default.copyItem(atPath: shared + "/" + file, toPath: directory + "/" + file)
            }
        }

        var tokenTable: [String: Any] = [:]
        for token in tokens {
            tokenTable[token.value] = ["user": token.user, "verbs": token.verbs, "rbac": token.rbac]
        }
        let config: [String: Any] = [
            "tokens": tokenTable,
            "certUsers": [Self.certificateUser: ["verbs": ["*"]]],
            "availableAfterSeconds": secondsOf(availableAfter),
            "objects": objects,
        ]
        let configPath = directory + "/sim.json"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))

        var arguments = [
            repositoryRoot() + "/Tests/Simulators/kube/kube_sim.py", "--port", "0", "--config", configPath,
            "--port-file", directory + "/port", "--control-port-file", directory + "/control-port",
        ]
        if tls {
            arguments += [
                "--tls-cert", directory + "/server.crt", "--tls-key", directory + "/server.key", "--client-ca", caPath,
            ]
        }
        process = try ManagedProcess(
            name: "kube-sim", executable: try Self.python3(), arguments: arguments, directory: directory,
            installHint: "apt-get install -y python3")
        var ports: (Int, Int)?
        do {
            try await waitUntil("the Kubernetes API simulator to listen", timeout: .seconds(60)) {
                guard let api = Self.readPort(directory + "/port"),
                    let control = Self.readPort(directory + "/control-port")
                else { return false }
                ports = (api, control)
                return true
            }
        } catch {
            process.stop()
            throw SupportError("\(error); simulator log:\n\(process.logTail())")
        }
        port = ports!.0
        url = (tls ? "https" : "http") + "://127.0.0.1:\(port)"
        controlURL = "http://127.0.0.1:\(ports!.1)"
        _ = try await control("GET", "/_sim/healthz")
    }

    deinit { process.stop() }

    /// Stops the simulator (also done on deinit).
    public func stop() { process.stop() }

    /// The simulator's own log, for failure messages.
    public func logTail() -> String { process.logTail() }

    // MARK: kubeconfig

    /// Writes a kubeconfig with one context per token (named after the token's user) and a `cert`
    /// context using the client certificate; `current` is the current-context. Returns its path.
    @discardableResult
    public func writeKubeconfig(
        named file: String = "kubeconfig", current: String = "admin", namespace: String = "default",
        inlineCA: Bool = false
    ) throws -> String {
        let caLine: String
        if url.hasPrefix("http://") {
            caLine = ""
        } else if inlineCA {
            caLine =
                "\n    certificate-authority-data: "
                + (try Data(contentsOf: URL(fileURLWithPath: caPath)).base64EncodedString())
        } else {
            caLine = "\n    certificate-authority: " + caPath
        }
        var users = ""
        var contexts = ""
        for token in tokens {
            users += "- name: \(token.context)\n  user:\n    token: \(token.value)\n"
            contexts +=
                "- name: \(token.context)\n  context: {cluster: sim, user: \(token.context), namespace: \(namespace)}\n"
        }
        users +=
            "- name: cert\n  user:\n    client-certificate: \(clientCertificatePath)\n"
            + "    client-key: \(clientKeyPath)\n"
        contexts += "- name: cert\n  context: {cluster: sim, user: cert, namespace: \(namespace)}\n"
        let text = """
            apiVersion: v1
            kind: Config
            clusters:
            - name: sim
              cluster:
                server: \(url)\(caLine)
            users:
            \(users)contexts:
            \(contexts)current-context: \(current)

            """
        let path = directory + "/" + file
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The token of `user`.
    public func token(_ user: String) -> String { tokens.first { $0.user == user }?.value ?? "" }

    // MARK: control

    /// Makes a `fraction` of resource requests answer with one of `kinds` (`"429"`, `"500"`, `"hang"`).
    public func setFaults(
        fraction: Double, kinds: [String], retryAfterSeconds: Int = 1, hangSeconds: Double = 30, seed: Int = 1,
        pathContains: String = ""
    ) async throws {
        _ = try await control(
            "POST", "/_sim/faults",
            [
                "fraction": fraction, "kinds": kinds, "retryAfterSeconds": retryAfterSeconds,
                "hangSeconds": hangSeconds, "seed": seed, "pathContains": pathContains,
            ])
    }

    /// How long new Deployment pods take to become available.
    public func setAvailableAfter(_ delay: Duration) async throws {
        _ = try await control("POST", "/_sim/config", ["availableAfterSeconds": secondsOf(delay)])
    }

    /// Forces a Deployment's pods `available`, `unavailable`, or back to `auto`.
    public func setDeploymentMode(namespace: String, name: String, _ mode: String) async throws {
        _ = try await control("POST", "/_sim/deployments/\(namespace)/\(name)/status", ["mode": mode])
    }

    /// Changes an object behind the client's back (another writer): its resourceVersion moves on.
    public func touch(plural: String, namespace: String, name: String) async throws {
        _ = try await control("POST", "/_sim/touch/\(plural)/\(namespace)/\(name)")
    }

    /// Every (API group, resource, verb) the simulator authorized for `user` since it started, as
    /// `group/resource:verb` (the core group is empty: `/events:create`); subresources as `deployments/scale`.
    public func verbsUsed(by user: String) async throws -> Set<String> {
        let object = try await control("GET", "/_sim/verbs")
        let entries = ((object["users"] as? [String: Any])?[user] as? [[String: Any]]) ?? []
        return Set(
            entries.map {
                "\($0["group"] as? String ?? "")/\($0["resource"] as? String ?? ""):\($0["verb"] as? String ?? "")"
            })
    }

    /// One request the simulator received.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: String
        public var contentType: String
        public var user: String?
        public var status: Int
        public var body: String
    }

    /// The requests received so far (the last 2000), oldest first.
    public func requests() async throws -> [Request] {
        let object = try await control("GET", "/_sim/requests")
        let list = (object["requests"] as? [[String: Any]]) ?? []
        return list.map {
            Request(
                method: $0["method"] as? String ?? "", path: $0["path"] as? String ?? "",
                query: $0["query"] as? String ?? "", contentType: $0["contentType"] as? String ?? "",
                user: $0["user"] as? String, status: $0["status"] as? Int ?? 0, body: $0["body"] as? String ?? "")
        }
    }

    @discardableResult
    private func control(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> [String: Any] {
        var request = URLRequest(url: URL(string: controlURL + path)!, timeoutInterval: 10)
        request.httpMethod = method
        if let body {
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else {
            throw SupportError(
                "simulator control \(method) \(path): HTTP \(status): \(String(decoding: data, as: UTF8.self))")
        }
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    // MARK: helpers

    private static func readPort(_ path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The system python3 when there is one (a pyenv shim on PATH costs a shell and ~0.25 s a start), else
    /// python3 from PATH; the simulator needs only the standard library.
    static func python3() throws -> String {
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") { return "/usr/bin/python3" }
        if let found = findOnPath("python3") { return found }
        throw SupportError("python3 not found on PATH; install it with: apt-get install -y python3")
    }

    /// Made once per test process: the openssl CLI costs ~0.1 s of CPU a key on shared cores.
    private static let certificates = Result { () throws -> String in
        let directory = try makeTemporaryDirectory("kube-sim-pki")
        try makeCertificates(in: directory)
        return directory
    }

    /// A CA, a server certificate for 127.0.0.1 and a client certificate, made with the openssl CLI.
    private static func makeCertificates(in directory: String) throws {
        let ext = directory + "/server.ext"
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
            .write(toFile: ext, atomically: true, encoding: .utf8)
        let clientExt = directory + "/client.ext"
        try "extendedKeyUsage=clientAuth\n".write(toFile: clientExt, atomically: true, encoding: .utf8)
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        let steps: [[String]] = [
            ["req", "-x509"] + curve + [
                "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=kube-sim-ca",
            ],
            ["req"] + curve + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kube-sim"],
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.crt", "-days", "2", "-extfile", ext,
            ],
            ["req"] + curve + ["-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=\(certificateUser)"],
            [
                "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "client.crt", "-days", "2", "-extfile", clientExt,
            ],
        ]
        guard let openssl = findOnPath("openssl") else {
            throw SupportError("openssl not found on PATH; install it with: apt-get install -y openssl")
        }
        for step in steps {
            let result = try runProcessSync(openssl, step, directory: directory)
            guard result.status == 0 else {
                throw SupportError("openssl \(step.joined(separator: " ")): \(result.stderr)")
            }
        }
    }
}

/// A duration in (fractional) seconds, for the simulator's JSON config.
func secondsOf(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// The output of a finished child process.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs `executable` to completion (killed after `timeout`) and returns its exit status and output.
/// Polls with `Task.sleep`, so many can run at once without holding the cooperative threads.
public func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: String,
    timeout: Duration = .seconds(60)
) async throws -> ProcessResult {
    try await runProcess(executable, arguments, environment: environment, directory: directory, timeout: timeout) {
        try await Task.sleep(for: .milliseconds(5))  // poll interval of a deadline-bounded wait for exit
    }
}

/// Synchronous and without a deadline: only for the openssl calls made once per test process.
private func runProcessSync(_ executable: String, _ arguments: [String], directory: String) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    process.standardOutput = FileHandle.nullDevice
    let err = Pipe()
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: "", stderr: String(decoding: stderr, as: UTF8.self))
}

private func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]?, directory: String,
    timeout: Duration, pause: () async throws -> Void
) async throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    let name = UUID().uuidString.prefix(8)
    let outPath = directory + "/.run-\(name).out"
    let errPath = directory + "/.run-\(name).err"
    FileManager.default.createFile(atPath: outPath, contents: nil)
    FileManager.default.createFile(atPath: errPath, contents: nil)
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    defer {
        try? out.close()
        try? err.close()
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
    }
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline { try await pause() }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        throw SupportError("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
    }
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus,
        stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// The first executable named `name` on PATH.
public func findOnPath(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// The real versioned kubectl (`kubectl.1.33` beside the Google Cloud SDK's `kubectl` dispatcher).
public func kubectlBinary(version: String = "1.33") throws -> String {
    let hint =
        "kubectl \(version) not found; install it with: gcloud components install kubectl "
        + "(the SDK's bin folder holds kubectl.1.XX), or put a kubectl.\(version) on PATH"
    guard let dispatcher = findOnPath("kubectl") else { throw SupportError(hint) }
    let real = URL(fileURLWithPath: dispatcher).resolvingSymlinksInPath().deletingLastPathComponent()
    let candidate = real.appendingPathComponent("kubectl.\(version)").path
    if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    if let onPath = findOnPath("kubectl.\(version)") { return onPath }
    throw SupportError(hint)
}

/// Runs real kubectl against `kubeconfig` with HOME in a temporary directory (its discovery cache goes there).
public func runKubectl(_ arguments: [String], kubeconfig: String, home: String) async throws -> ProcessResult {
    let environment = [
        "HOME": home, "KUBECONFIG": kubeconfig, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
    ]
    return try await runProcess(
        try kubectlBinary(), arguments, environment: environment, directory: home, timeout: .seconds(60))
}
