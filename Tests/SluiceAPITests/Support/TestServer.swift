import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import SluiceAPI
import SluiceCore
import SluiceTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One token per role, named after it: `viewer-token` is the viewer's token, named `viewer-bot`.
enum TestTokens {
    static func token(_ role: Role) -> String { "\(role.rawValue)-token-\(role.rawValue.count)" }
    static func name(_ role: Role) -> String { "\(role.rawValue)-bot" }
    static var entries: [TokenEntry] {
        Role.allCases.map { TokenEntry(name: name($0), role: $0, sha256: TokenHash.hex(token($0))) }
    }
}

/// An HTTP answer as a test sees it.
struct Answer {
    var status: Int
    var body: Data
    var headers: [String: String]
    var text: String { String(decoding: body, as: UTF8.self) }
    func json() throws -> [String: Any] {
        (try JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:]
    }
    var errorCode: String? { ((try? json())?["error"] as? [String: Any])?["code"] as? String }
}

/// Runs the API with a `FakeBackend` on a free port of 127.0.0.1 for the duration of `body`.
func withAPIServer<T>(
    authenticator: Authenticator = Authenticator(entries: TestTokens.entries), logger given: Logger? = nil,
    _ body: (URL, FakeBackend, APIMetrics) async throws -> T
) async throws -> T {
    let signal = EventSignal()
    let backend = FakeBackend(signal: signal)
    backend.seedStrategy(StrategyKey(namespace: "shop", name: "checkout"))
    let metrics = APIMetrics()
    var logger = Logger(label: "sluice-api-test")
    logger.logLevel = .critical
    if let given { logger = given }
    let server = APIServer(
        backend: backend, authenticator: authenticator, signal: signal, metrics: metrics,
        logger: logger, now: { FakeBackend.epoch })
    let bound = PortBox()
    let app = try server.buildApplication(host: "127.0.0.1", port: 0) { port in bound.set(port) }
    let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        defer { tasks.cancelAll() }
        try await waitUntil("the API server to listen", timeout: .seconds(20)) { bound.port != nil }
        let url = URL(string: "http://127.0.0.1:\(bound.port!)")!
        let result = try await body(url, backend, metrics)
        await group.triggerGracefulShutdown()
        return result
    }
}

final class PortBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int?
    var port: Int? { lock.withLock { value } }
    func set(_ port: Int) { lock.withLock { value = port } }
}

/// One plain-HTTP request with URLSession (fine for tests; the CLI uses curl).
func send(
    _ method: String, _ url: URL, _ path: String, token: String? = nil, body: Data? = nil,
    headers: [String: String] = [:]
) async throws -> Answer {
    var request = URLRequest(url: URL(string: url.absoluteString + path)!)
    request.httpMethod = method
    request.httpBody = body
    request.timeoutInterval = 10
    if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    let (data, response) = try await URLSession.shared.data(for: request)
    let http = response as! HTTPURLResponse
    var fields: [String: String] = [:]
    for (name, value) in http.allHeaderFields { fields["\(name)".lowercased()] = "\(value)" }
    return Answer(status: http.statusCode, body: data, headers: fields)
}
