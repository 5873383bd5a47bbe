import ArgumentParser
import Foundation
import Logging
import SluiceAPI

/// `sluice serve [--config FILE]`: the reconciler and the HTTP API in one process.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the reconciler and the HTTP API (SIGTERM stops both gracefully).")

    @Option(help: "The server config (YAML: listen, tls, tokensFile, statePath or database, kubeconfig, context, strategiesDir).")
    var config: String = "sluice.yaml"

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    @Option(help: "Log format: text or json (one object a line). Default: logFormat in the config, else text on a terminal and json otherwise.")
    var logFormat: String?

    @Option(
        help: """
            Export spans to this OpenTelemetry collector (OTLP/HTTP base URL, like http://collector:4318; spans go \
            to URL/v1/traces). Default: otlp.endpoint in the config, else no export.
            """)
    var otlpEndpoint: String?

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error")
        }
        var flagFormat: LogFormat?
        if let logFormat {
            guard let format = LogFormat(rawValue: logFormat) else {
                throw ValidationError("--log-format must be text or json, got \"\(logFormat)\"")
            }
            flagFormat = format
        }
        var loaded: ServerConfig
        do {
            loaded = try ServerConfig.load(path: config)
        } catch {
            writeError("sluice serve: \(error)")
            throw ExitCode(1)
        }
        if let otlpEndpoint {
            switch ServerConfig.OTLP.endpoint(otlpEndpoint) {
            case .success(let endpoint):
                guard loaded.traceContext else {
                    throw ValidationError(
                        "--otlp-endpoint exports the spans of trace context, which traceContext: false in \(config) "
                            + "turns off")
                }
                if loaded.otlp == nil { loaded.otlp = ServerConfig.OTLP(endpoint: endpoint) }
                loaded.otlp?.endpoint = endpoint
            case .failure(let error):
                throw ValidationError(
                    "--otlp-endpoint: " + error.message.replacingOccurrences(of: "`otlp.endpoint`", with: "the URL"))
            }
        }
        let serverConfig = loaded
        let format = flagFormat ?? serverConfig.logFormat ?? .default()
        LoggingSystem.bootstrap { label in format.handler(label: label, level: level) }
        let logger = Logger(label: "sluice")
        do {
            let scheme = serverConfig.tls == nil ? "http" : "https"
            let group = try await SluiceServer.make(config: serverConfig, logger: logger) { port in
                logger.info("API listening", metadata: ["url": "\(scheme)://\(serverConfig.host):\(port)"])
            }
            try await group.run()
        } catch {
            writeError("sluice serve: \(error)")
            throw ExitCode(1)
        }
    }
}
