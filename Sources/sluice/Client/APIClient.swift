import Foundation
import SluiceAPI
import SluiceCore
import SluiceHTTP

/// A failure of a client command, mapped to the exit codes of docs/api.md.
struct CLIError: Error, CustomStringConvertible {
    enum Code: Int32 {
        /// The rollout rolled back or failed, or validation failed.
        case verdict = 1
        /// The server could not be reached or answered an error.
        case server = 3
        /// `--timeout` passed before a verdict.
        case timeout = 4
        /// A rollback was requested but the router did not confirm traffic on stable within `--wait`.
        case notConfirmed = 5
        /// Bad command-line usage.
        case usage = 64
    }
    var code: Code
    /// Values in it (the server's words, a path) have their control characters made visible.
    var message: TerminalText
    /// The server did not answer at all (connection refused, timeout): a follower may wait for it to return.
    var unreachable: Bool
    init(_ code: Code, _ message: TerminalText, unreachable: Bool = false) {
        self.code = code
        self.message = message
        self.unreachable = unreachable
    }
    var description: String { message.description }
}

/// Talks to the Sluice API: finds the server and the token, sends JSON, maps errors to `CLIError`.
struct APIClient: Sendable {
    let server: String
    let token: String?
    let http: any HTTPStreamingClient
    let tls: TLSOptions

    /// A request that may wait on the server (a long poll) gets this much longer than its wait.
    static let requestTimeout: Duration = .seconds(15)

    func get<T: Decodable>(_ path: String, as type: T.Type, timeout: Duration = requestTimeout) async throws -> T {
        try decode(T.self, from: try await send("GET", path, timeout: timeout))
    }

    func post<T: Decodable>(_ path: String, json body: some Encodable, as type: T.Type) async throws -> T {
        let data = try JSONEncoder().encode(body)
        return try decode(T.self, from: try await send("POST", path, body: data, contentType: "application/json"))
    }

    /// Sends a request; a non-2xx answer throws `CLIError(.server)` with the server's message, or
    /// `APIFailure` when the caller wants to look at the details (see `sendRaw`).
    func send(
        _ method: String, _ path: String, body: Data? = nil, contentType: String? = nil,
        timeout: Duration = requestTimeout
    ) async throws -> HTTPResponse {
        let response = try await sendRaw(method, path, body: body, contentType: contentType, timeout: timeout)
        guard (200..<300).contains(response.status) else { throw Self.failure(response, method: method, path: path) }
        return response
    }

    /// Sends a request and returns any answer; only an unreachable server throws.
    func sendRaw(
        _ method: String, _ path: String, body: Data? = nil, contentType: String? = nil,
        timeout: Duration = requestTimeout
    ) async throws -> HTTPResponse {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")] + Self.traceHeaders
        if let contentType { headers.append(("Content-Type", contentType)) }
        let request = HTTPRequest(
            method: method, url: server + path, headers: headers, body: body, timeout: timeout,
            connectTimeout: .seconds(5), maxResponseBytes: 64 << 20, tls: tls, auth: token.map { .bearer($0) },
            retry: method == "GET" ? .default : .none)
        do {
            return try await http.execute(request)
        } catch {
            throw CLIError(
                .server, "cannot reach the Sluice server at \(Redaction.url(server)): \(error)", unreachable: true)
        }
    }

    /// Opens a Server-Sent Events stream (`Accept: text/event-stream`); transport failures throw `HTTPError`
    /// so a follower can tell a dropped connection from a refusal.
    func stream(_ path: String, idleTimeout: Duration) async throws -> HTTPStreamResponse {
        let request = HTTPRequest(
            url: server + path, headers: [("Accept", "text/event-stream")] + Self.traceHeaders, connectTimeout: .seconds(5),
            tls: tls,
            auth: token.map { .bearer($0) }, retry: .none)
        return try await http.stream(request, idleTimeout: idleTimeout)
    }

    /// W3C `traceparent` and `tracestate` from `$TRACEPARENT` and `$TRACESTATE` (OpenTelemetry's environment
    /// variables for trace context, which CI systems and `otel-cli` set), so what a command causes on the server, its
    /// events and the router calls that carry it out join the caller's trace (docs/api.md). A value with a character
    /// outside printable ASCII is not sent; the server ignores a malformed one.
    static let traceHeaders: [(name: String, value: String)] = {
        let environment = ProcessInfo.processInfo.environment
        return [("traceparent", "TRACEPARENT"), ("tracestate", "TRACESTATE")].compactMap { header, variable in
            guard let value = environment[variable], !value.isEmpty, value.utf8.count <= 512,
                value.utf8.allSatisfy({ (0x20...0x7E).contains($0) })
            else { return nil }
            return (header, value)
        }
    }()

    /// The server's error body as one line: `409 conflict: a rollout of shop/checkout is active`.
    static func failure(_ response: HTTPResponse, method: String, path: String) -> CLIError {
        if let body = try? JSONDecoder().decode(ErrorBody.self, from: response.body) {
            var line: TerminalText = "server answered \(response.status) \(body.error.code): \(body.error.message)"
            for detail in body.error.details.prefix(5) { line += "; \(detail.path ?? "-"): \(detail.message)" }
            return CLIError(.server, line)
        }
        return CLIError(.server, "server answered \(response.status) to \(method) \(path)")
    }

    func decode<T: Decodable>(_ type: T.Type, from response: HTTPResponse) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: response.body)
        } catch {
            throw CLIError(.server, "the server's answer is not what this sluice expects (\(T.self)): \(error)")
        }
    }

    // MARK: Rollouts of a strategy

    /// The newest rollout of `strategy`, if any (the listing is newest first).
    func newestRollout(of strategy: StrategyKey) async throws -> RolloutView? {
        try await get("/v1/rollouts?strategy=\(Self.escape(strategy.description))&limit=1", as: RolloutList.self)
            .rollouts.first
    }

    /// Every rollout, newest first: follows the pages of `GET /v1/rollouts` (`next` → `after`) to the end.
    func allRollouts() async throws -> [RolloutView] {
        var rollouts: [RolloutView] = []
        var after: String?
        repeat {
            let page = try await get(
                "/v1/rollouts" + (after.map { "?after=\(Self.escape($0))" } ?? ""), as: RolloutList.self)
            rollouts += page.rollouts
            if let next = page.next, next == after {
                throw CLIError(.server, "the server answered the same page again after rollout \(next)")
            }
            after = page.next
        } while after != nil
        return rollouts
    }

    /// The active (non-terminal) rollout of `strategy`; a clear error when there is none.
    func activeRollout(of strategy: StrategyKey) async throws -> RolloutView {
        let all = try await get("/v1/rollouts?strategy=\(Self.escape(strategy.description))", as: RolloutList.self)
        let terminal: Set<String> = [Phase.succeeded.rawValue, Phase.rolledBack.rawValue, Phase.failed.rawValue]
        guard let active = all.rollouts.filter({ !terminal.contains($0.phase) }).max(by: { $0.createdAt < $1.createdAt })
        else {
            // Say whether the strategy exists at all (the server's 404 names it in another namespace, if any).
            if all.rollouts.isEmpty { _ = try await self.strategy(strategy) }
            throw CLIError(.server, "no active rollout of \(strategy)")
        }
        return active
    }

    /// The applied strategy `key`; the server's 404 when there is none.
    func strategy(_ key: StrategyKey) async throws -> StrategyView {
        try await get("/v1/strategies/\(Self.escape(key.namespace))/\(Self.escape(key.name))", as: StrategyView.self)
    }

    /// Sends `verb` (`pause`, `resume`, `promote`, `rollback`) to the active rollout of `strategy`.
    func command(_ verb: String, strategy: String, body: some Encodable) async throws -> RolloutView {
        let active = try await activeRollout(of: try strategyKey(strategy))
        return try await post("/v1/rollouts/\(active.id)/\(verb)", json: body, as: RolloutView.self)
    }

    static func escape(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+?"))) ?? value
    }
}
