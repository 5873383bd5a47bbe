import Foundation
import Yams

/// A kubeconfig as kubectl reads it: one file or several (`KUBECONFIG=a:b`) merged, where the first file to
/// define a cluster, user or context (or `current-context`) wins. Relative file paths in a file are resolved
/// against that file's folder.
public struct KubeConfig: Sendable, Hashable {
    /// A cluster entry.
    public struct Cluster: Sendable, Hashable {
        public var server: String
        /// A CA file (already resolved to an absolute path) or PEM data from `certificate-authority-data`.
        public var certificateAuthority: TLSSource?
        public var insecureSkipTLSVerify: Bool
    }

    /// A user entry. Secrets are never printed (see `description`).
    public struct User: Sendable, Hashable {
        public var token: String?
        public var tokenFile: String?
        public var clientCertificate: TLSSource?
        public var clientKey: TLSSource?
        /// The exec credential plugin, when the user authenticates through one (`aws eks get-token`,
        /// `gke-gcloud-auth-plugin`, `kubelogin`...).
        public var exec: Exec?
        /// The auth-provider's name (`gcp`, `oidc`...), when the user has one (not supported).
        public var authProvider: String?
        /// `username`/`password` basic auth is present (not supported).
        public var hasBasicAuth: Bool
    }

    /// A user's `exec` entry: the credential plugin kubectl would run (client.authentication.k8s.io v1 or v1beta1).
    public struct Exec: Sendable, Hashable {
        /// The program: a name looked up on `PATH`, or a path (a relative one already resolved against the
        /// kubeconfig's folder).
        public var command: String
        public var args: [String]
        /// Variables added to Sluice's own environment for the plugin, in order.
        public var env: [EnvVar]
        /// `client.authentication.k8s.io/v1` or `/v1beta1`; the plugin must answer in the same version.
        public var apiVersion: String
        /// What to tell the user when the program is missing.
        public var installHint: String?
        /// Whether `KUBERNETES_EXEC_INFO` carries the cluster (server, CA) to the plugin.
        public var provideClusterInfo: Bool

        public init(
            command: String, args: [String] = [], env: [EnvVar] = [],
            apiVersion: String = ExecCredentialPlugin.v1, installHint: String? = nil, provideClusterInfo: Bool = false
        ) {
            self.command = command
            self.args = args
            self.env = env
            self.apiVersion = apiVersion
            self.installHint = installHint
            self.provideClusterInfo = provideClusterInfo
        }
    }

    /// One `env` entry of an exec plugin.
    public struct EnvVar: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// A context: which cluster, which user, which default namespace.
    public struct Context: Sendable, Hashable {
        public var cluster: String
        public var user: String
        public var namespace: String?
    }

    /// A PEM file or PEM bytes.
    public enum TLSSource: Sendable, Hashable {
        case file(String)
        case data(Data)
    }

    public var clusters: [String: Cluster] = [:]
    public var users: [String: User] = [:]
    public var contexts: [String: Context] = [:]
    public var currentContext: String?
    /// The files read, in order (for error messages).
    public var files: [String] = []

    public init() {}

    /// Reads and merges `paths` in order. A path that does not exist is skipped (as kubectl does); an empty list
    /// or no readable file is an error.
    public static func load(paths: [String]) throws -> KubeConfig {
        var merged = KubeConfig()
        for path in paths where !path.isEmpty {
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw KubernetesError(
                    .configuration, "kubeconfig \(path): cannot be read: \(error.localizedDescription)")
            }
            merged.merge(try parse(text, file: path))
        }
        guard !merged.files.isEmpty else {
            throw KubernetesError(
                .configuration, "no kubeconfig found (looked at: \(paths.joined(separator: ", ")))")
        }
        return merged
    }

    /// The files kubectl would read: `$KUBECONFIG` split on `:`, else `$HOME/.kube/config`.
    public static func defaultPaths(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            return list.split(separator: ":").map(String.init)
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return [home + "/.kube/config"]
    }

    /// Parses one kubeconfig file's text. `file` names it in errors and anchors relative paths.
    public static func parse(_ text: String, file: String) throws -> KubeConfig {
        let root: Any?
        do {
            root = try Yams.load(yaml: text)
        } catch {
            throw KubernetesError(.configuration, "kubeconfig \(file): not valid YAML: \(error)")
        }
        guard let document = root as? [String: Any] else {
            throw KubernetesError(.configuration, "kubeconfig \(file): the document is not a mapping")
        }
        let base = URL(fileURLWithPath: file).deletingLastPathComponent().path
        var config = KubeConfig()
        config.files = [file]
        config.currentContext = (document["current-context"] as? String).flatMap { $0.isEmpty ? nil : $0 }

        for (index, entry) in try namedEntries(document, "clusters", file: file) {
            let where_ = "kubeconfig \(file): clusters[\(index)]"
            guard let server = entry.body["server"] as? String, !server.isEmpty else {
                throw KubernetesError(.configuration, "\(where_) (\(entry.name)): cluster.server is missing")
            }
            config.clusters[entry.name] = Cluster(
                server: server,
                certificateAuthority: try source(entry.body, "certificate-authority", base: base, at: where_),
                insecureSkipTLSVerify: entry.body["insecure-skip-tls-verify"] as? Bool ?? false)
        }
        for (index, entry) in try namedEntries(document, "users", file: file) {
            let where_ = "kubeconfig \(file): users[\(index)] (\(entry.name))"
            let body = entry.body
            config.users[entry.name] = User(
                token: body["token"] as? String,
                tokenFile: (body["tokenFile"] as? String).map { absolute($0, base: base) },
                clientCertificate: try source(body, "client-certificate", base: base, at: where_),
                clientKey: try source(body, "client-key", base: base, at: where_),
                exec: try exec(body["exec"], base: base, at: where_),
                authProvider: (body["auth-provider"] as? [String: Any]).map { ($0["name"] as? String) ?? "unnamed" },
                hasBasicAuth: body["username"] != nil || body["password"] != nil)
        }
        for (index, entry) in try namedEntries(document, "contexts", file: file) {
            guard let cluster = entry.body["cluster"] as? String else {
                throw KubernetesError(
                    .configuration, "kubeconfig \(file): contexts[\(index)] (\(entry.name)): context.cluster is missing"
                )
            }
            config.contexts[entry.name] = Context(
                cluster: cluster, user: entry.body["user"] as? String ?? "",
                namespace: (entry.body["namespace"] as? String).flatMap { $0.isEmpty ? nil : $0 })
        }
        return config
    }

    /// Adds what `other` defines and this config does not (the first definition wins).
    public mutating func merge(_ other: KubeConfig) {
        clusters.merge(other.clusters) { first, _ in first }
        users.merge(other.users) { first, _ in first }
        contexts.merge(other.contexts) { first, _ in first }
        if currentContext == nil { currentContext = other.currentContext }
        files += other.files
    }

    // MARK: parsing helpers

    private struct Entry {
        var name: String
        var body: [String: Any]
    }

    /// `clusters: [{name: N, cluster: {...}}]` and the same for users and contexts.
    private static func namedEntries(_ document: [String: Any], _ key: String, file: String) throws -> [(Int, Entry)] {
        guard let value = document[key], !(value is NSNull) else { return [] }
        guard let list = value as? [Any] else {
            throw KubernetesError(.configuration, "kubeconfig \(file): \(key) must be a list")
        }
        let inner = String(key.dropLast())  // clusters -> cluster
        return try list.enumerated().map { index, item in
            guard let item = item as? [String: Any], let name = item["name"] as? String, !name.isEmpty else {
                throw KubernetesError(.configuration, "kubeconfig \(file): \(key)[\(index)]: name is missing")
            }
            return (index, Entry(name: name, body: item[inner] as? [String: Any] ?? [:]))
        }
    }

    /// A user's `exec` mapping, checked as kubectl checks it: a command, a supported apiVersion, `env` as
    /// name/value pairs, and no `interactiveMode: Always` (a server has no terminal to ask on).
    private static func exec(_ value: Any?, base: String, at place: String) throws -> Exec? {
        guard let value, !(value is NSNull) else { return nil }
        guard let body = value as? [String: Any] else {
            throw KubernetesError(.configuration, "\(place): exec must be a mapping")
        }
        guard let command = body["command"] as? String, !command.isEmpty else {
            throw KubernetesError(.configuration, "\(place): exec.command is missing")
        }
        let apiVersion = body["apiVersion"] as? String ?? ""
        guard ExecCredentialPlugin.apiVersions.contains(apiVersion) else {
            throw KubernetesError(
                .configuration,
                "\(place): exec.apiVersion \(apiVersion.isEmpty ? "is missing" : "\"\(apiVersion)\" is not supported"); "
                    + "use \(ExecCredentialPlugin.apiVersions.joined(separator: " or "))")
        }
        if let mode = body["interactiveMode"] as? String, mode == "Always" {
            throw KubernetesError(
                .configuration,
                "\(place): exec.interactiveMode is Always, but Sluice runs the plugin without a terminal; "
                    + "use IfAvailable or Never")
        }
        let args = try (body["args"] as? [Any] ?? []).enumerated().map { index, arg in
            guard let arg = arg as? String else {
                throw KubernetesError(.configuration, "\(place): exec.args[\(index)] must be a string")
            }
            return arg
        }
        let env = try (body["env"] as? [Any] ?? []).enumerated().map { index, item in
            guard let item = item as? [String: Any], let name = item["name"] as? String, !name.isEmpty,
                let value = item["value"] as? String
            else {
                throw KubernetesError(.configuration, "\(place): exec.env[\(index)] needs a name and a string value")
            }
            return EnvVar(name: name, value: value)
        }
        return Exec(
            command: command.contains("/") ? absolute(command, base: base) : command, args: args, env: env,
            apiVersion: apiVersion, installHint: body["installHint"] as? String,
            provideClusterInfo: body["provideClusterInfo"] as? Bool ?? false)
    }

    /// `KEY` (a file) or `KEY-data` (base64 PEM); the data wins when both are set, as in kubectl.
    private static func source(_ body: [String: Any], _ key: String, base: String, at place: String) throws
        -> TLSSource?
    {
        if let encoded = body[key + "-data"] as? String, !encoded.isEmpty {
            guard let data = Data(base64Encoded: encoded, options: .ignoreUnknownCharacters) else {
                throw KubernetesError(.configuration, "\(place): \(key)-data is not valid base64")
            }
            return .data(data)
        }
        if let path = body[key] as? String, !path.isEmpty { return .file(absolute(path, base: base)) }
        return nil
    }

    private static func absolute(_ path: String, base: String) -> String {
        path.hasPrefix("/") ? path : base + "/" + path
    }
}
