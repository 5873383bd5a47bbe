import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1

/// One loopback HTTP port (`ScaleHTTPServer`) that answers as Prometheus does (`/api/v1/query`) and as Caddy's
/// admin API does for `reverse_proxy` handlers by `@id` (`GET`/`PATCH /id/ID` with `Etag`/`If-Match`), and
/// timestamps what it serves and receives on the benchmark's clock. Queries answer the value set for them (0 until
/// set); a handler nobody wrote yet is stable `127.0.0.1:1` at weight 1 and canary `127.0.0.1:2` at weight 0.
final class LoopbackFakes: @unchecked Sendable {
    typealias Instant = ContinuousClock.Instant

    /// `http://127.0.0.1:PORT`: the Prometheus address and the Caddy admin URL alike.
    var url: String { "http://127.0.0.1:\(server.port)" }
    private var server: ScaleHTTPServer!
    private let lock = NSLock()
    private var values: [String: Double] = [:]
    /// When a query's value was last set, and when that value was first served after it.
    private var setAt: [String: Instant] = [:]
    private var firstServedAt: [String: Instant] = [:]
    private var handlers: [String: (json: [String: Any], etag: Int)] = [:]
    /// Every weight written to a handler, with when it arrived.
    private var weightLog: [String: [(weight: Int, at: Instant)]] = [:]

    init() throws {
        server = try ScaleHTTPServer(threads: 1) { [unowned self] request in self.answer(request) }
    }

    func shutdown() { try? server.shutdown() }

    /// Makes `query` answer `value` from now on; returns when.
    @discardableResult
    func set(_ query: String, to value: Double) -> Instant {
        lock.withLock {
            let now = ContinuousClock.now
            values[query] = value
            setAt[query] = now
            firstServedAt[query] = nil
            return now
        }
    }

    /// When the value last set for `query` was first served, if it has been.
    func firstServed(_ query: String) -> Instant? { lock.withLock { firstServedAt[query] } }

    /// The canary weight handler `id` has now (its last write), nil when never written.
    func weight(_ id: String) -> Int? { lock.withLock { weightLog[id]?.last?.weight } }

    /// When handler `id` first received `weight` at or after `after`.
    func received(_ id: String, weight: Int, after: Instant) -> Instant? {
        lock.withLock { weightLog[id]?.first { $0.weight == weight && $0.at >= after }?.at }
    }

    /// Polls (every millisecond, bounded) until handler `id` has received `weight` at or after `after`; the
    /// instant returned is when the write arrived, not when the poll saw it.
    func waitForWeight(_ id: String, _ weight: Int, after: Instant, timeout: Duration) async throws -> Instant {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let at = received(id, weight: weight, after: after) { return at }
            guard ContinuousClock.now < deadline else {
                throw BenchError("router handler \(id) did not receive weight \(weight) within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(1))  // poll; the arrival time is recorded by the server
        }
    }

    private func answer(_ request: ScaleRequest) -> ScaleResponse {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        if path == "/api/v1/query" { return query(request) }
        if path.hasPrefix("/id/") { return handler(String(path.dropFirst(4)), request) }
        return ScaleResponse(status: .notFound, body: #"{"error": "not found"}"#)
    }

    private func query(_ request: ScaleRequest) -> ScaleResponse {
        let items = URLComponents(string: request.uri)?.queryItems ?? []
        guard let query = items.first(where: { $0.name == "query" })?.value else {
            let error = #"{"status":"error","errorType":"bad_data","error":"no query"}"#
            return ScaleResponse(status: .badRequest, body: error)
        }
        let value: Double = lock.withLock {
            if setAt[query] != nil, firstServedAt[query] == nil { firstServedAt[query] = ContinuousClock.now }
            return values[query] ?? 0
        }
        let time = Date().timeIntervalSince1970
        let body = #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":["#
            + "\(time),\"\(value)\"]}]}}"
        return ScaleResponse(body: body)
    }

    private func handler(_ id: String, _ request: ScaleRequest) -> ScaleResponse {
        lock.withLock {
            let current = handlers[id] ?? (Self.initialHandler, 1)
            switch request.method {
            case .GET:
                let body = (try? JSONSerialization.data(withJSONObject: current.json, options: [.sortedKeys])) ?? Data()
                return ScaleResponse(
                    headers: [("Content-Type", "application/json"), ("Etag", "\"\(current.etag)\"")],
                    body: String(decoding: body, as: UTF8.self))
            case .PATCH:
                guard request.headers.first(name: "If-Match") == "\"\(current.etag)\"" else {
                    return ScaleResponse(status: .preconditionFailed, body: #"{"error": "precondition failed"}"#)
                }
                let body = request.body.map { Data($0.readableBytesView) } ?? Data()
                guard let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
                    return ScaleResponse(status: .badRequest, body: #"{"error": "not a JSON object"}"#)
                }
                handlers[id] = (json, current.etag + 1)
                weightLog[id, default: []].append((Self.canaryPercent(json), ContinuousClock.now))
                return ScaleResponse(body: "{}")
            default:
                return ScaleResponse(status: .methodNotAllowed, body: "")
            }
        }
    }

    private static var initialHandler: [String: Any] {
        [
            "handler": "reverse_proxy", "upstreams": [["dial": "127.0.0.1:1"], ["dial": "127.0.0.1:2"]],
            "load_balancing": ["selection_policy": ["policy": "weighted_round_robin", "weights": [1, 0]]],
        ]
    }

    /// The canary's share in percent: the weight of upstream `127.0.0.1:2` over all weights.
    private static func canaryPercent(_ json: [String: Any]) -> Int {
        let upstreams = (json["upstreams"] as? [[String: Any]] ?? []).map { $0["dial"] as? String ?? "" }
        let policy = (json["load_balancing"] as? [String: Any])?["selection_policy"] as? [String: Any]
        let weights = policy?["weights"] as? [Int] ?? []
        let total = weights.reduce(0, +)
        let canary = zip(upstreams, weights).filter { $0.0 == "127.0.0.1:2" }.map(\.1).reduce(0, +)
        return total == 0 ? 0 : Int((Double(canary) * 100 / Double(total)).rounded())
    }
}

/// `sluice-bench fakes`: the loopback fakes in their own process (so `tick` under callgrind counts only
/// Sluice's instructions). Writes its URL to `--url-file` and serves until SIGTERM.
struct FakesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fakes", abstract: "Serve the loopback fake Prometheus + Caddy admin API (for tick).",
        shouldDisplay: false)

    @Option(help: "Where to write the fakes' URL once listening.")
    var urlFile: String

    func run() async throws {
        let fakes = try LoopbackFakes()
        try Data(fakes.url.utf8).write(to: URL(fileURLWithPath: urlFile), options: .atomic)
        while true { try await Task.sleep(for: .seconds(3600)) }  // serves until the parent stops the process
    }
}
