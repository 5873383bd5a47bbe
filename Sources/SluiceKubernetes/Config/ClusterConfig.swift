import Foundation
import SluiceCore
import SluiceHTTP

/// Everything needed to talk to one API server: its URL, TLS settings, credentials and default namespace.
/// Built from a kubeconfig or from the in-cluster service account. Its description never shows a secret.
public struct ClusterConfig: Sendable, CustomStringConvertible {
    /// `https://host:port` (no trailing slash).
    public var server: String
    public var tls: TLSOptions
    public var credentials: Credentials
    /// The context's namespace (kubeconfig) or the pod's own (in-cluster); `default` otherwise.
    public var namespace: String

    /// How requests prove who sends them (client certificates travel in `tls`).
    public enum Credentials: Sendable {
        case none
        /// A fixed bearer token.
        case token(String)
        /// A bearer token read from a file and read again when the file changes (rotated service-account tokens).
        case tokenFile(TokenFile)
        /// A bearer token (or client certificate) from an exec credential plugin, cached until it expires and
        /// asked for again after a 401.
        case exec(ExecCredentialPlugin)
    }

    public init(
        server: String, tls: TLSOptions = .init(), credentials: Credentials = .none, namespace: String = "default"
    ) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.tls = tls
        self.credentials = credentials
        self.namespace = namespace
    }

    public var description: String {
        let auth: String
        switch credentials {
        case .none: auth = tls.clientCertificate == nil ? "none" : "client certificate"
        case .token: auth = "bearer token (redacted)"
        case .tokenFile(let file): auth = "bearer token from \(file.path)"
        case .exec(let plugin): auth = "exec credential plugin \(plugin.spec.command)"
        }
        return "cluster \(Redaction.url(server)), namespace \(namespace), auth: \(auth)"
    }

    /// The cluster of `context` (the current context when nil) in the kubeconfig at `paths`
    /// (default: `$KUBECONFIG`, else `~/.kube/config`).
    public static func fromKubeconfig(
        paths: [String] = KubeConfig.defaultPaths(), context: String? = nil
    ) throws -> ClusterConfig {
        try KubeConfig.load(paths: paths).clusterConfig(context: context)
    }

    /// The service account's view of the cluster it runs in: `KUBERNETES_SERVICE_HOST`/`_PORT`, the token
    /// (re-read when it rotates), `ca.crt` and `namespace` under `directory`.
    public static func inCluster(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        directory: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) throws -> ClusterConfig {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
            let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
        else {
            throw KubernetesError(
                .configuration,
                "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
        }
        let tokenPath = directory + "/token"
        let caPath = directory + "/ca.crt"
        for path in [tokenPath, caPath] where !FileManager.default.isReadableFile(atPath: path) {
            throw KubernetesError(.configuration, "in-cluster config: \(path) is missing or unreadable")
        }
        let namespace = (try? String(contentsOfFile: directory + "/namespace", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let hostPart = host.contains(":") ? "[\(host)]" : host  // an IPv6 service address
        return ClusterConfig(
            server: "https://\(hostPart):\(port)", tls: TLSOptions(ca: .file(caPath)),
            credentials: .tokenFile(TokenFile(path: tokenPath)),
            namespace: namespace.flatMap { $0.isEmpty ? nil : $0 } ?? "default")
    }
}

extension KubeConfig {
    /// The connection settings of `context`, or of the current context.
    public func clusterConfig(context name: String? = nil) throws -> ClusterConfig {
        let files = self.files.joined(separator: ":")
        guard let contextName = name ?? currentContext else {
            throw KubernetesError(.configuration, "kubeconfig \(files): no current-context is set and none was given")
        }
        guard let context = contexts[contextName] else {
            throw KubernetesError(.configuration, "kubeconfig \(files): context \"\(contextName)\" not found")
        }
        guard let cluster = clusters[context.cluster] else {
            throw KubernetesError(
                .configuration,
                "kubeconfig \(files): context \"\(contextName)\" names cluster \"\(context.cluster)\", "
                    + "which is not defined")
        }
        var tls = TLSOptions(ca: cluster.certificateAuthority.map(\.httpSource))
        tls.insecureSkipVerify = cluster.insecureSkipTLSVerify
        var credentials = ClusterConfig.Credentials.none
        if !context.user.isEmpty {
            guard let user = users[context.user] else {
                throw KubernetesError(
                    .configuration,
                    "kubeconfig \(files): context \"\(contextName)\" names user \"\(context.user)\", "
                        + "which is not defined")
            }
            if let provider = user.authProvider {
                throw KubernetesError(
                    .configuration,
                    "kubeconfig \(files): user \"\(context.user)\" uses the \"\(provider)\" "
                        + "auth-provider, which Sluice does not support; use a token, tokenFile or client certificate")
            }
            if user.token == nil, user.tokenFile == nil, user.exec == nil, user.clientCertificate == nil,
                user.hasBasicAuth
            {
                throw KubernetesError(
                    .configuration,
                    "kubeconfig \(files): user \"\(context.user)\" has only username/password, which "
                        + "Sluice does not support; use a token, tokenFile or client certificate")
            }
            if (user.clientCertificate == nil) != (user.clientKey == nil) {
                throw KubernetesError(
                    .configuration,
                    "kubeconfig \(files): user \"\(context.user)\" needs both client-certificate and "
                        + "client-key (or both -data forms)")
            }
            tls.clientCertificate = user.clientCertificate?.httpSource
            tls.clientKey = user.clientKey?.httpSource
            if let token = user.token, !token.isEmpty {
                credentials = .token(token)
            } else if let path = user.tokenFile {
                credentials = .tokenFile(TokenFile(path: path))
            } else if let exec = user.exec {
                credentials = .exec(
                    ExecCredentialPlugin(
                        exec, user: context.user, cluster: exec.provideClusterInfo ? cluster : nil))
            }
        }
        return ClusterConfig(
            server: cluster.server, tls: tls, credentials: credentials, namespace: context.namespace ?? "default")
    }
}

extension KubeConfig.TLSSource {
    var httpSource: TLSOptions.Source {
        switch self {
        case .file(let path): .file(path)
        case .data(let data): .pem(data)
        }
    }
}

/// A bearer token kept in a file that may be replaced at any time (a projected service-account token is
/// rotated hourly). The file is read again whenever its modification time or size changes.
public final class TokenFile: Sendable {
    public let path: String
    private let cache = Locked<(stamp: String, token: String)?>(nil)

    public init(path: String) { self.path = path }

    /// The current token. `force` reads the file even if it looks unchanged (after a 401).
    public func token(force: Bool = false) throws -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let stamp =
            "\((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)/\(attributes?[.size] ?? 0)"
        if !force, let cached = cache.current, cached.stamp == stamp { return cached.token }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw KubernetesError(.configuration, "token file \(path) cannot be read")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw KubernetesError(.configuration, "token file \(path) is empty") }
        cache.withLock { $0 = (stamp, token) }
        return token
    }
}
