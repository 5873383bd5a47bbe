import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore
import SluiceHTTP

/// How a client command finds the server and its token (`--server`/`SLUICE_SERVER`,
/// `--token-file`/`SLUICE_TOKEN`), and a CA for a server with a private certificate.
struct ClientOptions: ParsableArguments {
    @Option(help: "The Sluice API, e.g. https://sluice.internal:7700 (default: $SLUICE_SERVER).")
    var server: String?

    @Option(name: .customLong("token-file"), help: "A file holding the API token (default: the token in $SLUICE_TOKEN).")
    var tokenFile: String?

    @Option(name: .customLong("ca-file"), help: "PEM CA bundle that signed the server's certificate (default: $SLUICE_CA_FILE).")
    var caFile: String?

    /// Resolves the server, token and TLS settings; a missing server or unreadable token file is a usage error.
    func client(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> APIClient {
        guard var server = server ?? environment["SLUICE_SERVER"], !server.isEmpty else {
            throw CLIError(.usage, "no server: pass --server URL or set SLUICE_SERVER")
        }
        guard server.hasPrefix("http://") || server.hasPrefix("https://") else {
            throw CLIError(.usage, "--server must be an http:// or https:// URL, got \"\(server)\"")
        }
        while server.hasSuffix("/") { server.removeLast() }
        var token: String?
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                throw CLIError(.usage, "cannot read the token file \(tokenFile)")
            }
            token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        } else if let fromEnvironment = environment["SLUICE_TOKEN"], !fromEnvironment.isEmpty {
            token = fromEnvironment.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let tokenFile, token?.isEmpty ?? true { throw CLIError(.usage, "the token file \(tokenFile) is empty") }
        guard let token, !token.isEmpty else {
            // Every route but the health checks needs a token: say how to pass one instead of asking for a 401.
            throw CLIError(
                .usage,
                "no API token: pass --token-file FILE, or set SLUICE_TOKEN (tokens are in the server's tokens file, "
                    + "see `sluice token hash`)")
        }
        var tls = TLSOptions()
        if let ca = caFile ?? environment["SLUICE_CA_FILE"], !ca.isEmpty { tls.ca = .file(ca) }
        return APIClient(server: server, token: token, http: makeHTTPClient(), tls: tls)
    }
}

/// `NAME` or `NAMESPACE/NAME`, as a usage error when malformed.
func strategyKey(_ text: String) throws -> StrategyKey {
    guard let key = StrategyKey(parsing: text) else {
        throw CLIError(.usage, "a strategy is NAME or NAMESPACE/NAME, got \"\(text)\"")
    }
    return key
}

/// Runs a client command body, turning `CLIError` into one line on stderr and its exit code.
func runClient(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CLIError {
        note(error.message)
        throw ExitCode(error.code.rawValue)
    }
}

/// Whether standard output is a terminal (redraw in place) or a log (plain lines).
var stdoutIsTerminal: Bool { isatty(1) == 1 }

/// Prints to standard output without buffering surprises between redraws. Every line the CLI prints goes
/// through here or `writeError`: `TerminalText` keeps what the CLI wrote and makes control characters in the
/// values it interpolates visible.
func write(_ text: TerminalText) {
    FileHandle.standardOutput.write(Data(text.description.utf8))
}

/// One line on standard error (the newline is added).
func writeError(_ line: TerminalText) {
    FileHandle.standardError.write(Data((line.description + "\n").utf8))
}

/// The one outbound HTTP client of the CLI (libcurl: custom CAs, verified TLS, timeouts).
func makeHTTPClient() -> CurlClient {
    do {
        return try CurlClient()
    } catch {
        note("cannot start the HTTP client: \(error)")
        exit(3)
    }
}
