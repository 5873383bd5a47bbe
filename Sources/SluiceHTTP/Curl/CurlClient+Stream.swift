import Foundation

extension CurlClient {
    /// One streaming transfer on the event loop: returns at the response head, then curl's writes become the
    /// body's chunks. Cancellation before the head, or the reader going away after it, aborts the transfer.
    public func stream(_ request: HTTPRequest, idleTimeout: Duration) async throws -> HTTPStreamResponse {
        let request = propagatingContext(request)
        if request.tls.insecureSkipVerify { warnInsecureOnce(request.url) }
        if Task.isCancelled {
            throw HTTPError(code: .cancelled, url: request.url, message: "the request was cancelled")
        }
        guard idleTimeout > .zero else {
            throw HTTPError(code: .invalidRequest, url: request.url, message: "the idle timeout must be positive")
        }
        let sink = CurlStreamSink(idleTimeout: idleTimeout)
        let transfer = try CurlTransfer(request: request, easy: loop.makeHandle(), sink: sink)
        let loop = loop
        sink.onReaderGone { loop.cancel(transfer) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { head in
                sink.awaitHead(head)
                loop.submit(transfer)
            }
        } onCancel: {
            loop.cancel(transfer)
        }
    }
}
