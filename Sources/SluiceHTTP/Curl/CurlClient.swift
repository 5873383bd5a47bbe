import CCurl
import Foundation
import Instrumentation
import SluiceCore
import Tracing

/// `HTTPClient` over libcurl: one event-loop thread over `curl_multi`, connections reused across requests,
/// HTTP/2 where offered, task cancellation aborting the transfer, and bounded retries per `RetryPolicy`.
public final class CurlClient: HTTPStreamingClient, @unchecked Sendable {
    let loop: CurlEventLoop
    /// Requests in flight per origin (scheme, host and port), the rest waiting in order; streams are not counted
    /// (they stay open). A waiting request costs a suspended task, not an easy handle, and it is not in curl's multi
    /// handle, so the event loop's work per iteration stays bounded by what is really in flight. Without this, a
    /// burst (every rollout due at once after a stall) put tens of thousands of handles into curl, slowed the one
    /// loop thread that had to drain them, and the controller never caught up (BENCHMARKS.md). One slow origin
    /// fills only its own slots. A request's `timeout` starts when it is admitted: it bounds the server, not the
    /// queue in front of it; callers bound the queue (the controller's observation timeout cancels a waiter).
    let admission = AdmissionGate(limit: CurlEventLoop.maxConnectionsPerHost)
    private let warn: @Sendable (String) -> Void
    private let warnedInsecure = Locked(false)
    private let random: @Sendable () -> Double
    /// Adds the current task's trace context (`traceparent`) to every request; nil: nothing is added.
    let instrument: (any Instrument)?

    /// - Parameters:
    ///   - warn: receives a one-time warning when a request turns TLS verification off. Default: stderr.
    ///   - random: a uniform draw in `0..<1` for backoff jitter; injectable so tests can pin it.
    ///   - instrument: propagates `ServiceContext.current` (a tick's, a command's span) on every request.
    public init(
        warn: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        instrument: (any Instrument)? = nil
    ) throws {
        loop = try CurlEventLoop()
        self.warn = warn
        self.random = random
        self.instrument = instrument
    }

    /// `request` with the trace context of the current task (W3C `traceparent`), when there is an instrument and a
    /// context; the request as it is otherwise, at the cost of one task-local read.
    func propagatingContext(_ request: HTTPRequest) -> HTTPRequest {
        guard let instrument, let context = ServiceContext.current else { return request }
        var request = request
        instrument.inject(context, into: &request.headers, using: HeaderFieldsInjector())
        return request
    }

    deinit { loop.shutdown() }

    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        // A client span of its own when spans are recorded (OTLP export) and the call is part of a trace (a tick's,
        // a command's): the call's `traceparent` then names this span.
        guard let tracer = instrument as? W3CTracer, tracer.isRecording, let context = ServiceContext.current,
            context.traceContext != nil
        else { return try await executeInContext(request) }
        return try await tracer.withSpan(request.method, context: context, ofKind: .client) { span in
            span.attributes = Self.clientSpanAttributes(request)
            let response = try await executeInContext(request)
            span.attributes["http.response.status_code"] = response.status
            if response.status >= 400 { span.setStatus(SpanStatus(code: .error)) }
            return response
        }
    }

    /// A client span's attributes (OpenTelemetry's HTTP conventions): the method and the server, not the path or
    /// the query, which can hold a secret (a webhook's path is its credential).
    static func clientSpanAttributes(_ request: HTTPRequest) -> SpanAttributes {
        var attributes: SpanAttributes = [:]
        attributes["http.request.method"] = request.method
        if let url = URLComponents(string: request.url) {
            if let scheme = url.scheme { attributes["url.scheme"] = scheme }
            if let host = url.host { attributes["server.address"] = host }
            if let port = url.port ?? (url.scheme == "https" ? 443 : url.scheme == "http" ? 80 : nil) {
                attributes["server.port"] = port
            }
        }
        return attributes
    }

    /// `request` with the current trace context, sent with retries.
    private func executeInContext(_ request: HTTPRequest) async throws -> HTTPResponse {
        let request = propagatingContext(request)
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
        let slot: AdmissionGate.Slot
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
            warn("warning: TLS certificate verification is off (insecureSkipTLSVerify) for \(Redaction.url(url))")
        }
    }
}
