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
        let serverConfig: ServerConfig
        do {
            serverConfig = try ServerConfig.load(path: config)
        } catch {
            writeError("sluice serve: \(error)")
            throw ExitCode(1)
        }
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
