import CCurl
import Foundation

/// `HTTPClient` over libcurl: one event-loop thread over `curl_multi`, connections reused across requests,
/// HTTP/2 where offered, task cancellation aborting the transfer, and bounded retries per `RetryPolicy`.
public final class CurlClient: HTTPStreamingClient, @unchecked Sendable {
    let loop: CurlEventLoop
    /// Requests in flight per origin, the rest waiting in order (streams are not counted: they stay open).
    let admission = CurlAdmission(limit: CurlEventLoop.maxConnectionsPerHost)
    private let warn: @Sendable (String) -> Void
    private let warnedInsecure = LockedBox(false)
    private let random: @Sendable () -> Double

    /// - Parameters:
    ///   - warn: receives a one-time warning when a request turns TLS verification off. Default: stderr.
    ///   - random: a uniform draw in `0..<1` for backoff jitter; injectable so tests can pin it.
    public init(
        warn: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) throws {
        loop = try CurlEventLoop()
        self.warn = warn
        self.random = random
    }

    deinit { loop.shutdown() }

    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        if request.tls.insecureSkipVerify { warnInsecureOnce(request.url) }
        let policy = request.retry
        var attempt = 1
        while true {
            let retryAfter: Duration?
            do {
                let response = try await send(request)
                guard attempt < policy.maxAttempts, policy.shouldRetry(status: response.status, method: request.method)
                else { return response }
                retryAfter = response.header("Retry-After").flatMap { RetryPolicy.parseRetryAfter($0, now: Date()) }
            } catch let error as HTTPError {
                guard attempt < policy.maxAttempts, policy.shouldRetry(error, method: request.method) else { throw error }
                retryAfter = nil
            }
            let delay = policy.delay(afterAttempt: attempt, retryAfter: retryAfter, random: random())
            do {
                try await Task.sleep(for: delay)  // backoff between attempts, cut short by cancellation
            } catch {
                throw HTTPError(code: .cancelled, url: request.url, message: "cancelled while waiting to retry")
            }
            attempt += 1
        }
    }

    /// One attempt: a transfer on the event loop, bridged to async/await; cancellation aborts it.
    private func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        if Task.isCancelled {
            throw HTTPError(code: .cancelled, url: request.url, message: "the request was cancelled")
        }
        let slot: CurlAdmission.Slot
        do {
            slot = try await admission.slot(for: request.url)
        } catch {
            throw HTTPError(code: .cancelled, url: request.url, message: "the request was cancelled while queued")
        }
        let transfer: CurlTransfer
        do {
            transfer = try CurlTransfer(request: request, easy: loop.makeHandle(), slot: slot)
        } catch {
            slot.release()
            throw error
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.continuation = continuation
                loop.submit(transfer)
            }
        } onCancel: {
            loop.cancel(transfer)
        }
    }

    func warnInsecureOnce(_ url: String) {
        let first = warnedInsecure.withLock { warned in
            defer { warned = true }
            return !warned
        }
        if first {
            warn("warning: TLS certificate verification is off (insecureSkipTLSVerify) for \(HTTPError.redact(url))")
        }
    }
}
