import NIOCore
import NIOHTTP1
import NIOPosix

/// A keep-alive HTTP/1.1 server on 127.0.0.1 that answers every request with the same short body ("ok" unless
/// given). SwiftNIO on its own event loop, so neither client under test serves itself.
final class BenchServer {
    private let listener: LoopbackHTTPListener
    var port: Int { listener.port }

    init(threads: Int, body: String = "ok") throws {
        listener = try LoopbackHTTPListener(threads: threads) { Responder(body: body) }
    }

    func shutdown() throws { try listener.shutdown() }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let body: String

        init(body: String) { self.body = body }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            headers.add(name: "Content-Type", value: "text/plain")
            let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

/// An event-loop group and a keep-alive HTTP/1.1 listener on 127.0.0.1 (a free port) whose pipeline ends in the
/// handler `makeHandler` gives each connection.
final class LoopbackHTTPListener {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    let port: Int

    init<Handler: ChannelInboundHandler>(threads: Int, makeHandler: @escaping @Sendable () -> Handler) throws
    where Handler.InboundIn == HTTPServerRequestPart {
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(makeHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress?.port ?? 0
    }

    func shutdown() throws {
        try channel.close().wait()
        try group.syncShutdownGracefully()
    }
}
