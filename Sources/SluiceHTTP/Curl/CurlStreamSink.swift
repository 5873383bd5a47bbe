import Foundation

/// Where a streaming transfer delivers: the response head once, then body chunks as curl writes them.
/// Touched on the event-loop thread only, once the transfer is submitted.
final class CurlStreamSink: @unchecked Sendable {
    /// Chunks (curl writes at most 16 KiB at a time) a slow reader may fall behind before the transfer fails;
    /// this bounds the memory a stream holds.
    static let bufferedChunks = 1024

    let idleTimeout: Duration
    /// Handed over with the head and then forgotten: once the reader drops it, the stream is cancelled.
    private var body: AsyncThrowingStream<Data, any Error>?
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    private var head: CheckedContinuation<HTTPStreamResponse, any Error>?
    private var lastActivity = ContinuousClock.now
    /// Set when the reader fell `bufferedChunks` behind; the transfer then ends with `.tooLarge`.
    private(set) var fellBehind = false

    init(idleTimeout: Duration) {
        self.idleTimeout = idleTimeout
        let (body, continuation) = AsyncThrowingStream<Data, any Error>.makeStream(
            bufferingPolicy: .bufferingOldest(Self.bufferedChunks))
        self.body = body
        self.continuation = continuation
    }

    /// Called when the reader stops early (its task cancelled, or the body dropped unfinished): the transfer must
    /// be aborted. A cancelled reader's loop ends, or throws `.cancelled` if the abort is reported first.
    func onReaderGone(_ action: @escaping @Sendable () -> Void) {
        continuation.onTermination = { termination in
            if case .cancelled = termination { action() }
        }
    }

    /// Set before submission, on the caller's thread.
    func awaitHead(_ continuation: CheckedContinuation<HTTPStreamResponse, any Error>) { head = continuation }

    /// The transfer joined the multi handle: the idle clock starts.
    func started() { lastActivity = .now }

    /// When the idle timeout fires, if no byte arrives before.
    var idleDeadline: ContinuousClock.Instant { lastActivity + idleTimeout }

    /// A header line arrived.
    func touched() { lastActivity = .now }

    /// The final head is complete (1xx heads are not passed on).
    func headReceived(status: Int, headers: [(name: String, value: String)]) {
        lastActivity = .now
        guard let head, let body else { return }
        self.head = nil
        self.body = nil
        head.resume(returning: HTTPStreamResponse(status: status, headers: headers, body: body))
    }

    /// A body chunk arrived; false when the reader is too far behind to take it.
    func received(_ chunk: Data) -> Bool {
        lastActivity = .now
        if case .dropped = continuation.yield(chunk) {
            fellBehind = true
            return false
        }
        return true
    }

    /// The transfer ended: a head not yet delivered is delivered (success) or failed, then the body ends.
    func finish(_ outcome: Result<HTTPResponse, HTTPError>) {
        switch outcome {
        case .success(let response):
            headReceived(status: response.status, headers: response.headers)
            continuation.finish()
        case .failure(let error):
            if let head {
                self.head = nil
                body = nil
                head.resume(throwing: error)
            }
            continuation.finish(throwing: error)
        }
    }
}
