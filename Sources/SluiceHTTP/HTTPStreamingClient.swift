import Foundation
import SluiceCore

/// An `HTTPClient` that can also hand out a response body as it arrives (Server-Sent Events, long streams).
public protocol HTTPStreamingClient: HTTPClient {
    /// Sends `request` once (no retries: a follower reconnects on its own terms) and returns as soon as the
    /// response head is in; the body follows as chunks. `request.connectTimeout`, TLS and auth apply as for
    /// `execute`; `request.timeout` and `maxResponseBytes` do not, since a stream has no end to bound. Instead
    /// the transfer fails with `HTTPError.Code.timedOut` when no byte arrives for `idleTimeout`. Cancelling the
    /// task, or dropping the body stream unfinished, aborts the transfer and closes its connection (the cancelled
    /// reader's loop then ends, or throws `HTTPError.Code.cancelled`).
    func stream(_ request: HTTPRequest, idleTimeout: Duration) async throws -> HTTPStreamResponse
}

/// A response whose body is still arriving.
public struct HTTPStreamResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    /// The body in chunks as they arrive; it ends when the server ends the body and throws `HTTPError` when the
    /// transfer fails (connection lost, idle timeout, the reader falling too far behind).
    public var body: AsyncThrowingStream<Data, any Error>

    public init(status: Int, headers: [(name: String, value: String)], body: AsyncThrowingStream<Data, any Error>) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first header named `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { ASCIIBytes.sameFieldName($0.name, name) }?.value
    }

    /// Reads the rest of the body (for an error answer); more than `limit` bytes fails with `.tooLarge`.
    public func collect(upTo limit: Int = 1 << 20, url: String = "") async throws -> Data {
        var data = Data()
        for try await chunk in body {
            guard data.count + chunk.count <= limit else {
                throw HTTPError(code: .tooLarge, url: url, message: "response body exceeds the limit of \(limit) bytes")
            }
            data.append(chunk)
        }
        return data
    }
}
