import Foundation
import SluiceController
import SluiceCore
import SluiceStore
import Yams

/// A configuration file that cannot be used: which file, where, and what is wrong.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var column: Int?
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// `file:line:column: message`, compiler style.
    public var description: String {
        var at = file
        if let line { at += ":\(line)" }
        if let column { at += ":\(column)" }
        return "\(at): \(message)"
    }
}

/// `sluice serve --config FILE`: everything the server needs, in one YAML file.
///
/// ```yaml
/// listen: 127.0.0.1:7700          # host:port; default 127.0.0.1:7700
/// tls: {cert: tls.crt, key: tls.key}   # optional; both PEM files
/// tokensFile: tokens.yaml         # required: [{name, role, sha256}]
/// statePath: ./sluice.db          # default ./sluice.db (SQLite: one replica)
/// database: postgres://sluice@db:5432/sluice?sslmode=verify-full   # instead of statePath (docs/ha.md)
/// databasePasswordFile: /run/secrets/sluice-db-password             # the password alone, never in the URL
/// leaseDuration: 15s              # with `database`: how long a replica's shard leases last (docs/ha.md)
/// leaseRenewInterval: 5s          # with `database`: how often they are renewed (at most half of leaseDuration)
/// kubeconfig: ~/.kube/config      # optional; in-cluster config when absent and running in a pod
/// context: prod                   # optional kubeconfig context
/// strategiesDir: strategies       # optional: applied at start
/// idleTimeout: 10s                # a connection without a complete request header for this long is closed
/// maxConnections: 4096            # connections beyond this wait in the listen backlog
/// sampleRetention: 7d             # samples of rollouts finished this long ago are pruned (0: never); events stay
/// oidc: [{issuer, audience, jwksURL, caFile, rules: [{role, claims}]}]   # optional: CI's OIDC tokens (OIDCIssuer)
/// logFormat: json                 # text or json; default text on a terminal, json otherwise (--log-format wins)
/// traceContext: false             # default true: W3C trace context through requests, events and outbound calls
/// otlp: {endpoint: http://collector:4318, ca: ca.pem, serviceName: sluice}   # optional: export spans (OTLP/HTTP)
/// ```
/// Relative paths are relative to the config file's directory.
public struct ServerConfig: Sendable, Hashable {
    /// Certificate chain and private key files (PEM) for the API's own TLS.
    public struct TLS: Sendable, Hashable {
        public var certificateFile: String
        public var keyFile: String
        public init(certificateFile: String, keyFile: String) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    public var host: String
    public var port: Int
    public var tls: TLS?
    public var tokensFile: String
    public var statePath: String
    /// The PostgreSQL store, when `database` is set (then `statePath` is unused).
    public var database: PostgresConfiguration?
    public var kubeconfig: String?
    public var context: String?
    public var strategiesDir: String?
    /// How long a connection may go without a complete request header: from its opening, or from the end of
    /// its previous response (a keep-alive connection waiting for its next request). Slow and idle clients
    /// are closed after it; a request being answered (an event stream, a long poll) is never cut by it.
    public var idleTimeout: Duration
    /// Open connections at most; further ones wait in the listen backlog until one closes.
    public var maxConnections: Int
    /// How long the samples of a finished rollout are kept (nil: for ever). The event log is kept whole.
    public var sampleRetention: Duration?
    /// The OIDC issuers whose tokens are accepted beside the tokens file (docs/api.md, "OIDC tokens for CI").
    public var oidc: [OIDCIssuer] = []
    /// The log's format; nil: `--log-format`, else `LogFormat.default`.
    public var logFormat: LogFormat?
    /// Whether requests, commands, ticks and effects carry W3C trace context (docs/operations.md, "Traces"); request
    /// ids are given either way.
    public var traceContext = true
    /// How long the shard leases of a replica on PostgreSQL last and how often they are renewed (docs/ha.md).
    public var leases = LeaseOptions()
    /// Where spans are exported (OTLP/HTTP); nil: they are not (the default).
    public var otlp: OTLP?

    /// `otlp:`: an OpenTelemetry collector that receives Sluice's spans (docs/operations.md "Exporting spans").
    public struct OTLP: Sendable, Hashable {
        /// The collector's OTLP/HTTP base URL (`http://collector:4318`); spans are posted to `endpoint/v1/traces`.
        public var endpoint: String
        /// A PEM CA file the collector's certificate is verified with, instead of the system's.
        public var caFile: String?
        /// The spans' `service.name`.
        public var serviceName = "sluice"

        public init(endpoint: String, caFile: String? = nil, serviceName: String = "sluice") {
            self.endpoint = endpoint
            self.caFile = caFile
            self.serviceName = serviceName
        }

        /// Where spans are posted.
        public var tracesURL: String { endpoint + "/v1/traces" }

        /// `text` as an endpoint (without a trailing `/`), or why it is not one: an http or https URL with a host,
        /// and no user, query or fragment (a credential in a URL ends up in logs).
        public static func endpoint(_ text: String) -> Result<String, ConfigError> {
            let problem = { (why: String) in
                Result<String, ConfigError>.failure(ConfigError(file: "", message: why))
            }
            guard let url = URLComponents(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme),
                let host = url.host, !host.isEmpty
            else {
                return problem("`otlp.endpoint` must be an http or https URL like http://collector:4318, got \"\(text)\"")
            }
            if url.user != nil || url.password != nil || url.query != nil || url.fragment != nil {
                return problem("`otlp.endpoint` must hold no user, password, query or fragment")
            }
            var endpoint = text
            while endpoint.hasSuffix("/") { endpoint.removeLast() }
            if endpoint.hasSuffix("/v1/traces") {
                return problem("`otlp.endpoint` is the collector's base URL; Sluice adds /v1/traces, got \"\(text)\"")
            }
            return .success(endpoint)
        }
    }

    /// The default `idleTimeout`: long enough for any client that means to send a request.
    public static let defaultIdleTimeout: Duration = .seconds(10)
    /// The default `maxConnections`.
    public static let defaultMaxConnections = 4096
    /// The default `sampleRetention`: a week, long enough to look into last week's rollouts at their samples.
    public static let defaultSampleRetention: Duration = .seconds(7 * 24 * 3600)

    public init(
        host: String = "127.0.0.1", port: Int = 7700, tls: TLS? = nil, tokensFile: String,
        statePath: String = "./sluice.db", kubeconfig: String? = nil, context: String? = nil,
        strategiesDir: String? = nil, idleTimeout: Duration = ServerConfig.defaultIdleTimeout,
        maxConnections: Int = ServerConfig.defaultMaxConnections,
        sampleRetention: Duration? = ServerConfig.defaultSampleRetention
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.tokensFile = tokensFile
        self.statePath = statePath
        self.kubeconfig = kubeconfig
        self.context = context
        self.strategiesDir = strategiesDir
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
        self.sampleRetention = sampleRetention
    }

    static let knownKeys: Set<String> = [
        "listen", "tls", "tokensFile", "statePath", "kubeconfig", "context", "strategiesDir", "idleTimeout",
        "maxConnections", "database", "databasePasswordFile", "sampleRetention", "oidc", "logFormat",
        "traceContext", "leaseDuration", "leaseRenewInterval", "otlp",
    ]

    /// Reads, parses and checks the config file at `path`.
    public static func load(path: String) throws -> ServerConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, message: "cannot read the config file")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(String(decoding: data, as: UTF8.self), file: path, baseDirectory: base)
    }

    /// Parses config text; `baseDirectory` anchors relative paths. Every error names file, line and column.
    public static func parse(_ text: String, file: String, baseDirectory: String) throws -> ServerConfig {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigError(file: file, message: "the config file is empty; `tokensFile` is required")
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw ConfigError(file: file, message: "not valid YAML: \(error)")
        } catch {
            throw ConfigError(file: file, message: "not valid YAML: \(error)")
        }
        guard let mapping = root.mapping else {
            throw ConfigError(file: file, line: root.mark?.line, column: root.mark?.column,
                              message: "the config must be a mapping of settings")
        }
        func fail(_ node: Node, _ message: String) -> ConfigError {
            ConfigError(file: file, line: node.mark?.line, column: node.mark?.column, message: message)
        }
        func string(_ key: String) throws -> String? {
            guard let node = mapping[key] else { return nil }
            guard let scalar = node.scalar, !scalar.string.isEmpty else {
                throw fail(node, "`\(key)` must be a non-empty string")
            }
            return scalar.string
        }
        func resolve(_ value: String) -> String {
            var value = value
            if value.hasPrefix("~/") {
                value = FileManager.default.homeDirectoryForCurrentUser.path + value.dropFirst(1)
            }
            return (value.hasPrefix("/") ? URL(fileURLWithPath: value) : URL(fileURLWithPath: baseDirectory).appendingPathComponent(value)).standardized.path
        }

        for (key, _) in mapping {
            guard let name = key.scalar?.string, knownKeys.contains(name) else {
                throw fail(key, unknownKey("setting", key.scalar?.string ?? "?", known: knownKeys.sorted()))
            }
        }

        var config = ServerConfig(tokensFile: "")
        if let listen = try string("listen") {
            guard let (host, port) = parseListen(listen) else {
                throw fail(mapping["listen"]!, "`listen` must be HOST:PORT with a port in 0...65535, got \"\(listen)\"")
            }
            config.host = host
            config.port = port
        }
        if let tlsNode = mapping["tls"] {
            guard let tls = tlsNode.mapping else { throw fail(tlsNode, "`tls` must be a mapping {cert, key}") }
            for (key, _) in tls where !["cert", "key"].contains(key.scalar?.string ?? "") {
                throw fail(key, unknownKey("TLS setting", key.scalar?.string ?? "?", known: ["cert", "key"]))
            }
            guard let cert = tls["cert"]?.scalar?.string, !cert.isEmpty else {
                throw fail(tlsNode, "`tls.cert` (a PEM certificate chain file) is required")
            }
            guard let key = tls["key"]?.scalar?.string, !key.isEmpty else {
                throw fail(tlsNode, "`tls.key` (a PEM private key file) is required")
            }
            config.tls = TLS(certificateFile: resolve(cert), keyFile: resolve(key))
            for (name, path) in [("tls.cert", config.tls!.certificateFile), ("tls.key", config.tls!.keyFile)]
            where !FileManager.default.isReadableFile(atPath: path) {
                throw fail(tlsNode, "`\(name)`: cannot read \(path)")
            }
        }
        guard let tokens = try string("tokensFile") else {
            throw fail(root, "`tokensFile` is required (a YAML list of {name, role, sha256})")
        }
        config.tokensFile = resolve(tokens)
        guard FileManager.default.isReadableFile(atPath: config.tokensFile) else {
            throw fail(mapping["tokensFile"]!, "`tokensFile`: cannot read \(config.tokensFile)")
        }
        if let state = try string("statePath") { config.statePath = resolve(state) } else {
            config.statePath = resolve("./sluice.db")
        }
        config.database = try database(mapping, string: string, resolve: resolve, fail: fail)
        config.kubeconfig = try string("kubeconfig").map(resolve)
        config.context = try string("context")
        if let dir = try string("strategiesDir") {
            config.strategiesDir = resolve(dir)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: config.strategiesDir!, isDirectory: &isDirectory),
                isDirectory.boolValue
            else {
                throw fail(mapping["strategiesDir"]!, "`strategiesDir`: \(config.strategiesDir!) is not a directory")
            }
        }
        if let text = try string("idleTimeout") {
            guard let timeout = Duration(go: text), timeout > .zero else {
                throw fail(mapping["idleTimeout"]!, "`idleTimeout` must be a positive duration like 10s or 1m, got \"\(text)\"")
            }
            config.idleTimeout = timeout
        }
        if let text = try string("maxConnections") {
            guard let limit = Int(text), (1...1_000_000).contains(limit) else {
                throw fail(mapping["maxConnections"]!, "`maxConnections` must be a whole number in 1...1000000, got \"\(text)\"")
            }
            config.maxConnections = limit
        }
        if let text = try string("sampleRetention") {
            // Days too (`7d`): a retention is said in days, and a Go duration has no unit for them.
            let days = text.hasSuffix("d")
                ? Int(text.dropLast()).flatMap { (0...36_500).contains($0) ? Duration.seconds($0 * 86_400) : nil } : nil
            guard let retention = days ?? Duration(go: text), retention >= .zero else {
                throw fail(
                    mapping["sampleRetention"]!,
                    "`sampleRetention` must be a duration like 7d, 36h or 0 (keep samples for ever), got \"\(text)\"")
            }
            config.sampleRetention = retention == .zero ? nil : retention
        }
        if let node = mapping["oidc"] { config.oidc = try OIDCIssuer.parseList(node, file: file, resolve: resolve) }
        if let text = try string("logFormat") {
            guard let format = LogFormat(rawValue: text) else {
                throw fail(mapping["logFormat"]!, "`logFormat` must be text or json, got \"\(text)\"")
            }
            config.logFormat = format
        }
        if let text = try string("traceContext") {
            guard let on = ["true": true, "false": false][text] else {
                throw fail(mapping["traceContext"]!, "`traceContext` must be true or false, got \"\(text)\"")
            }
            config.traceContext = on
        }
        if let node = mapping["otlp"] {
            config.otlp = try otlp(node, resolve: resolve, fail: fail)
            if !config.traceContext {
                throw fail(node, "`otlp` exports the spans of trace context, which `traceContext: false` turns off")
            }
        }
        for (key, set) in [
            ("leaseDuration", { (config: inout ServerConfig, value: Duration) in config.leases.duration = value }),
            ("leaseRenewInterval", { (config: inout ServerConfig, value: Duration) in config.leases.renewEvery = value }),
        ] {
            guard let text = try string(key) else { continue }
            guard let value = Duration(go: text), value >= .milliseconds(100) else {
                throw fail(mapping[key]!, "`\(key)` must be a duration of at least 100ms like 15s, got \"\(text)\"")
            }
            set(&config, value)
        }
        if config.leases.renewEvery * 2 > config.leases.duration {
            // Renewing at most every half lease leaves a failed renewal a second chance before the deadline.
            throw fail(
                mapping["leaseRenewInterval"] ?? mapping["leaseDuration"]!,
                "`leaseRenewInterval` (\(config.leases.renewEvery)) must be at most half of `leaseDuration` "
                    + "(\(config.leases.duration))")
        }
        return config
    }

    /// The PostgreSQL store of `database` (a URL) and `databasePasswordFile`, or nil when `database` is absent.
    static func database(
        _ mapping: Node.Mapping, string: (String) throws -> String?, resolve: (String) -> String,
        fail: (Node, String) -> ConfigError
    ) throws -> PostgresConfiguration? {
        let passwordFile = try string("databasePasswordFile").map(resolve)
        guard let url = try string("database"), let node = mapping["database"] else {
            if let passwordFile, let node = mapping["databasePasswordFile"] {
                throw fail(node, "`databasePasswordFile` (\(passwordFile)) is set but `database` is not")
            }
            return nil
        }
        if mapping["statePath"] != nil {
            throw fail(node, "`database` and `statePath` name two stores: keep `database` (PostgreSQL) or `statePath` (SQLite)")
        }
        var configuration: PostgresConfiguration
        do {
            configuration = try PostgresConfiguration.parse(url: url, passwordFile: passwordFile)
        } catch {
            throw fail(node, error.description)
        }
        if let passwordFile, !FileManager.default.isReadableFile(atPath: passwordFile) {
            throw fail(mapping["databasePasswordFile"]!, "`databasePasswordFile`: cannot read \(passwordFile)")
        }
        configuration.rootCertificateFile = configuration.rootCertificateFile.map(resolve)
        return configuration
    }

    /// `otlp: {endpoint, ca, serviceName}`.
    static func otlp(_ node: Node, resolve: (String) -> String, fail: (Node, String) -> ConfigError) throws -> OTLP {
        let keys = ["endpoint", "ca", "serviceName"]
        guard let mapping = node.mapping else {
            throw fail(node, "`otlp` must be a mapping {endpoint, ca, serviceName}")
        }
        for (key, _) in mapping where !keys.contains(key.scalar?.string ?? "") {
            throw fail(key, unknownKey("otlp setting", key.scalar?.string ?? "?", known: keys))
        }
        func text(_ key: String) throws -> String? {
            guard let value = mapping[key] else { return nil }
            guard let scalar = value.scalar, !scalar.string.isEmpty else {
                throw fail(value, "`otlp.\(key)` must be a non-empty string")
            }
            return scalar.string
        }
        guard let given = try text("endpoint") else {
            throw fail(node, "`otlp.endpoint` (the collector's OTLP/HTTP URL, like http://collector:4318) is required")
        }
        var otlp: OTLP
        switch OTLP.endpoint(given) {
        case .success(let endpoint): otlp = OTLP(endpoint: endpoint)
        case .failure(let error): throw fail(mapping["endpoint"]!, error.message)
        }
        if let ca = try text("ca") {
            otlp.caFile = resolve(ca)
            guard FileManager.default.isReadableFile(atPath: otlp.caFile!) else {
                throw fail(mapping["ca"]!, "`otlp.ca`: cannot read \(otlp.caFile!)")
            }
        }
        if let name = try text("serviceName") { otlp.serviceName = name }
        return otlp
    }

    /// `host:port`, `[v6]:port` or `:port` (all interfaces).
    static func parseListen(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        return (host, port)
    }
}

/// `unknown setting `tokenFile`; did you mean `tokensFile`?`, or the known keys when nothing is close.
func unknownKey(_ what: String, _ key: String, known: [String]) -> String {
    if let close = nearMiss(key, among: known) { return "unknown \(what) `\(key)`; did you mean `\(close)`?" }
    return "unknown \(what) `\(key)`; known: " + known.joined(separator: ", ")
}
