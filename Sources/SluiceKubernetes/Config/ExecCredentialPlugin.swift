import Foundation
import SluiceCore

#if canImport(Glibc)
    import Glibc
#endif

/// A kubeconfig `exec` credential plugin (`aws eks get-token`, `gke-gcloud-auth-plugin`, `kubelogin`...) run as
/// kubectl runs it: the command with its args, Sluice's environment plus the entry's `env` and
/// `KUBERNETES_EXEC_INFO`, no terminal. Its `ExecCredential` answer (a bearer token, or a client certificate and
/// key) is cached until `status.expirationTimestamp` and asked for again when the API server rejects it (401).
/// Errors name the plugin and the first line of what it wrote on stderr; never what it wrote on stdout.
public final class ExecCredentialPlugin: Sendable {
    /// What the plugin handed out. Compared to tell whether a 401 was answered to the cached credential.
    public struct Credential: Sendable, Equatable {
        public var token: String?
        /// PEM bytes of `status.clientCertificateData` and `status.clientKeyData`.
        public var clientCertificate: Data?
        public var clientKey: Data?
        /// `status.expirationTimestamp`; nil: valid until the API server rejects it.
        public var expires: Date?
    }

    public static let v1 = "client.authentication.k8s.io/v1"
    public static let v1beta1 = "client.authentication.k8s.io/v1beta1"
    /// The ExecCredential versions Sluice speaks (v1alpha1 was removed from Kubernetes in 1.24).
    public static let apiVersions = [v1, v1beta1]

    public let spec: KubeConfig.Exec
    /// The kubeconfig user the plugin belongs to (for errors).
    public let user: String
    /// The longest a run may take before it is killed.
    public let timeout: Duration
    private let execInfo: String
    private let now: @Sendable () -> Date
    private let cache = Locked<Credential?>(nil)
    /// One run at a time: requests that find the cache stale together wait for the same run.
    private let running = NSLock()

    /// `cluster` is passed to the plugin in `KUBERNETES_EXEC_INFO` (the entry's `provideClusterInfo`); `now` is
    /// the clock expiry is judged by.
    public init(
        _ spec: KubeConfig.Exec, user: String, cluster: KubeConfig.Cluster? = nil, timeout: Duration = .seconds(60),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.spec = spec
        self.user = user
        self.timeout = timeout
        self.now = now
        var info: [String: Any] = ["interactive": false]
        if let cluster {
            var described: [String: Any] = ["server": cluster.server]
            if cluster.insecureSkipTLSVerify { described["insecure-skip-tls-verify"] = true }
            switch cluster.certificateAuthority {
            case .data(let pem): described["certificate-authority-data"] = pem.base64EncodedString()
            case .file(let path):
                if let pem = FileManager.default.contents(atPath: path) {
                    described["certificate-authority-data"] = pem.base64EncodedString()
                }
            case nil: break
            }
            info["cluster"] = described
        }
        let object: [String: Any] = ["apiVersion": spec.apiVersion, "kind": "ExecCredential", "spec": info]
        execInfo = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
            .map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// The cached credential while it has not expired, else a fresh one from the plugin. `rejected` is the
    /// credential the API server just refused: if it is still the cached one, the plugin runs again.
    public func credential(replacing rejected: Credential? = nil) async throws -> Credential {
        try await withCheckedThrowingContinuation { continuation in
            // The plugin is a child process waited for with blocking calls: keep them off the cooperative pool.
            DispatchQueue.global().async {
                continuation.resume(with: Result { try self.blockingCredential(replacing: rejected) })
            }
        }
    }

    private func blockingCredential(replacing rejected: Credential?) throws -> Credential {
        running.lock()
        defer { running.unlock() }
        if let cached = cache.current, cached != rejected, cached.expires.map({ now() < $0 }) ?? true {
            return cached
        }
        let fresh = try parse(try run())
        cache.withLock { $0 = fresh }
        return fresh
    }

    private var name: String { "exec credential plugin \(spec.command) (user \"\(user)\")" }

    /// Runs the plugin and returns its stdout.
    private func run() throws -> Data {
        var environment = ProcessInfo.processInfo.environment
        for variable in spec.env { environment[variable.name] = variable.value }
        environment["KUBERNETES_EXEC_INFO"] = execInfo
        let executable = try resolve(environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = spec.args
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        let output = Pipe()
        process.standardOutput = output
        // stderr goes to a file, so a chatty plugin cannot fill a pipe nobody reads while stdout is read.
        let errorPath = NSTemporaryDirectory() + "sluice-exec-\(UUID().uuidString).stderr"
        FileManager.default.createFile(atPath: errorPath, contents: nil, attributes: [.posixPermissions: 0o600])
        defer { try? FileManager.default.removeItem(atPath: errorPath) }
        guard let errorFile = FileHandle(forWritingAtPath: errorPath) else {
            throw KubernetesError(.credentials, "\(name): cannot create a file for its stderr in \(errorPath)")
        }
        defer { try? errorFile.close() }
        process.standardError = errorFile
        do {
            try process.run()
        } catch {
            throw KubernetesError(.configuration, "\(name): \(executable) cannot be run: \(error.localizedDescription)")
        }
        let killed = Locked(false)
        let deadline = DispatchWorkItem {
            guard process.isRunning else { return }
            killed.withLock { $0 = true }
            process.terminate()
        }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: deadline)
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        deadline.cancel()

        if killed.current {
            throw KubernetesError(.credentials, "\(name): gave no answer within \(timeout) and was stopped")
        }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let how =
                process.terminationReason == .exit
                ? "exited with status \(process.terminationStatus)" : "was killed by signal \(process.terminationStatus)"
            let stderr = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
            let first = stderr.split(whereSeparator: \.isNewline).first.map { String($0.prefix(300)) }
            throw KubernetesError(.credentials, "\(name) \(how)" + (first.map { ": " + $0 } ?? " and wrote nothing on stderr"))
        }
        return data
    }

    /// The program to run: a path as given, or the first executable of that name on `PATH`.
    private func resolve(_ path: String) throws -> String {
        var candidates = [spec.command]
        if !spec.command.contains("/") {
            candidates = path.split(separator: ":").map { ($0.isEmpty ? "." : String($0)) + "/" + spec.command }
        }
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        let hint = spec.installHint.map { "; " + $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        let whereLooked = spec.command.contains("/") ? "is not an executable file" : "is not on PATH (\(path))"
        throw KubernetesError(.configuration, "\(name): \(spec.command) \(whereLooked)\(hint)")
    }

    /// Reads the `ExecCredential` on stdout. What the plugin wrote is never quoted: it may hold the token.
    private func parse(_ data: Data) throws -> Credential {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw KubernetesError(
                .credentials, "\(name): its output (\(data.count) bytes) is not an ExecCredential JSON object")
        }
        let kind = object["kind"] as? String ?? ""
        let apiVersion = object["apiVersion"] as? String ?? ""
        guard kind == "ExecCredential", apiVersion == spec.apiVersion else {
            throw KubernetesError(
                .credentials,
                "\(name): answered kind \"\(kind)\" apiVersion \"\(apiVersion)\", expected ExecCredential "
                    + spec.apiVersion)
        }
        guard let status = object["status"] as? [String: Any] else {
            throw KubernetesError(.credentials, "\(name): its ExecCredential has no status")
        }
        var credential = Credential()
        credential.token = (status["token"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        credential.clientCertificate = (status["clientCertificateData"] as? String).map { Data($0.utf8) }
        credential.clientKey = (status["clientKeyData"] as? String).map { Data($0.utf8) }
        if (credential.clientCertificate == nil) != (credential.clientKey == nil) {
            throw KubernetesError(
                .credentials, "\(name): its ExecCredential has only one of clientCertificateData and clientKeyData")
        }
        guard credential.token != nil || credential.clientCertificate != nil else {
            throw KubernetesError(
                .credentials, "\(name): its ExecCredential has neither status.token nor a client certificate")
        }
        if let stamp = status["expirationTimestamp"] as? String {
            guard let date = Self.rfc3339(stamp) else {
                throw KubernetesError(
                    .credentials, "\(name): status.expirationTimestamp \"\(stamp.prefix(40))\" is not an RFC 3339 time")
            }
            credential.expires = date
        }
        return credential
    }

    static func rfc3339(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return plain.date(from: text) ?? fractional.date(from: text)
    }
}
