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

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "sluice")
        do {
            let serverConfig = try ServerConfig.load(path: config)
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
