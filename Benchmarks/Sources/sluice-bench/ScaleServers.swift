import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A request as the scale benchmark's loopback servers see it: method, URI and the whole body.
struct ScaleRequest {
    var method: HTTPMethod
    var uri: String
    var headers: HTTPHeaders
    var body: ByteBuffer?
}

/// What a loopback server answers.
struct ScaleResponse {
    var status: HTTPResponseStatus = .ok
    var headers: [(String, String)] = [("Content-Type", "application/json")]
    var body: String
}

/// A keep-alive HTTP/1.1 server on 127.0.0.1 (SwiftNIO, its own event loops) that answers every request with
/// `respond`. `respond` runs on an event loop: it must be quick and thread-safe.
final class ScaleHTTPServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    let port: Int

    init(threads: Int, respond: @escaping @Sendable (ScaleRequest) -> ScaleResponse) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(Responder(respond: respond))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress?.port ?? 0
    }

    func shutdown() throws {
        try channel.close().wait()
        try group.syncShutdownGracefully()
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let respond: @Sendable (ScaleRequest) -> ScaleResponse
        var request: ScaleRequest?

        init(respond: @escaping @Sendable (ScaleRequest) -> ScaleResponse) { self.respond = respond }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                request = ScaleRequest(method: head.method, uri: head.uri, headers: head.headers, body: nil)
            case .body(var part):
                if request?.body == nil {
                    request?.body = part
                } else {
                    request?.body?.writeBuffer(&part)
                }
            case .end:
                guard let request else { return }
                self.request = nil
                let answer = respond(request)
                let body = ByteBuffer(string: answer.body)
                var headers = HTTPHeaders(answer.headers)
                headers.add(name: "Content-Length", value: "\(body.readableBytes)")
                let head = HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers)
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}

/// Answers `GET /api/v1/query` as Prometheus does for an instant query with one series (`resultType:
/// vector`), with a value that passes the benchmark's checks. Counts queries and, per query text (every
/// check of every rollout asks its own), the gap between one arrival and the next: the controller samples
/// each check every interval, so gap − interval is how late that sample came, seen from outside.
final class ScalePrometheus: Sendable {
    struct State {
        var requests = 0
        var lastArrival: [String: UInt64] = [:]
        /// Gaps between successive arrivals of the same query, in nanoseconds; collected while `recording`.
        var gaps: [UInt64] = []
        var recording = false
    }

    let state: ScaleLocked<State>
    let server: ScaleHTTPServer

    init(threads: Int) throws {
        let state = ScaleLocked(State())
        self.state = state
        server = try ScaleHTTPServer(threads: threads) { request in
            let now = DispatchTime.now().uptimeNanoseconds
            guard request.method == .GET, request.uri.hasPrefix("/api/v1/query?") else {
                return ScaleResponse(
                    status: .notFound, body: #"{"status":"error","errorType":"not_found","error":"unknown path"}"#)
            }
            state.withLock { state in
                state.requests += 1
                let previous = state.lastArrival.updateValue(now, forKey: request.uri)
                if state.recording, let previous { state.gaps.append(now - previous) }
            }
            let time = Double(Int(Date().timeIntervalSince1970 * 1000)) / 1000
            return ScaleResponse(
                body: #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":["#
                    + "\(time)" + #","0.001"]}]}}"#)
        }
    }

    var port: Int { server.port }
}

/// Answers like Caddy's admin API for `GET` and `PATCH /id/{id}`: every `@id` is a `reverse_proxy` handler
/// balanced by `weighted_round_robin`, kept in memory, with an `Etag` that a `PATCH` must match (`If-Match`).
final class ScaleCaddy: Sendable {
    struct Handler {
        var json: String
        var version: Int
    }

    struct State {
        var requests = 0
        var writes = 0
        var handlers: [String: Handler] = [:]
    }

    static let initialHandler =
        #"{"handler":"reverse_proxy","load_balancing":{"selection_policy":{"policy":"weighted_round_robin","#
        + #""weights":[1,0]}},"upstreams":[]}"#

    let state: ScaleLocked<State>
    let server: ScaleHTTPServer

    init(threads: Int) throws {
        let state = ScaleLocked(State())
        self.state = state
        server = try ScaleHTTPServer(threads: threads) { request in
            guard request.uri.hasPrefix("/id/") else {
                return ScaleResponse(status: .notFound, body: #"{"error":"unknown object ID"}"#)
            }
            let id = String(request.uri.dropFirst(4))
            return state.withLock { state -> ScaleResponse in
                state.requests += 1
                let current = state.handlers[id] ?? Handler(json: Self.initialHandler, version: 1)
                switch request.method {
                case .GET:
                    return ScaleResponse(
                        headers: [("Content-Type", "application/json"), ("Etag", "\"\(id) \(current.version)\"")],
                        body: current.json)
                case .PATCH:
                    guard request.headers.first(name: "If-Match") == "\"\(id) \(current.version)\"" else {
                        return ScaleResponse(status: .preconditionFailed, body: #"{"error":"etag mismatch"}"#)
                    }
                    let body = request.body.map { String(buffer: $0) } ?? ""
                    state.handlers[id] = Handler(json: body, version: current.version + 1)
                    state.writes += 1
                    return ScaleResponse(body: "")
                default:
                    return ScaleResponse(status: .methodNotAllowed, body: #"{"error":"method not allowed"}"#)
                }
            }
        }
    }

    var port: Int { server.port }
}

/// A value behind a lock, shared between event loops and tasks.
final class ScaleLocked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
