import Foundation
import SluiceCore
import Tracing

/// Sends finished spans to an OpenTelemetry collector over OTLP/HTTP with JSON bodies (`POST .../v1/traces`,
/// `Content-Type: application/json`, docs/operations.md "Exporting spans"): `W3CTracer`'s sink when `sluice serve`
/// has `otlp.endpoint` set.
///
/// Why here and not swift-otel (1.6.0, in the package mirror): measured on this project's 2-core machine, adding it
/// with only its `OTLPHTTP` trait (which needs `swift-tools-version` 6.1) compiles OTel, SwiftProtobuf,
/// AsyncHTTPClient, NIOHTTP2, NIOHPACK, NIOSOCKS, NIOHTTPCompression, swift-algorithms and swift-numerics on top of
/// what Sluice builds: 92 s and 98 s of CPU in two clean builds of those modules alone (4 min 6 s and 4 min 57 s
/// wall at load 13-17), and a fresh clone's CI builds them twice (the test build and `scripts/image --debug`): about
/// 3 CPU minutes, 1.5-3 minutes of wall time on an idle 2-core machine, in a CI run already at its 30-minute budget.
/// And it would not give what Sluice needs: its batch processor counts the spans it drops only for a log line (no
/// counter for `/metrics`), and its exporter would bring a second HTTP client (AsyncHTTPClient) beside libcurl.
/// This exporter is ~350 lines with its JSON encoding, over `CurlClient`: the same TLS verification, retries and
/// backoff as every other outbound call (docs/operations.md "Exporting spans" has the measurement and how it was
/// taken: `/usr/bin/time -v swift build --target` of a probe that imports only `OTel`, after building Sluice).
///
/// `record` never waits: a span goes into a bounded queue, or is dropped and counted when the queue is full
/// (a collector that is down or slow costs spans, never a tick). `run` sends the queue in batches, every `interval`
/// or as soon as a batch is full; a batch answered 429, 502, 503 or 504 (or not answered) is sent again with
/// exponential backoff (and the server's `Retry-After`), then dropped and counted.
public final class OTLPExporter: SpanSink {
    public struct Options: Sendable {
        /// The full URL spans are posted to: the collector's OTLP/HTTP base with `/v1/traces`.
        public var endpoint: String
        /// Verification is on; `ca` names a private CA.
        public var tls: TLSOptions
        /// The resource every span belongs to: `service.name`, `service.version`, ...
        public var resource: [(key: String, value: String)]
        /// The instrumentation scope's version (its name is `sluice`).
        public var version: String
        /// Spans waiting to be sent at most; more are dropped and counted.
        public var queueCapacity = 2048
        /// Spans per request at most.
        public var batchSize = 512
        /// How often the queue is sent when no batch is full.
        public var interval: Duration = .seconds(1)
        /// One request's deadline.
        public var timeout: Duration = .seconds(10)
        /// Attempts of one batch (OTLP allows resending: the collector drops nothing twice that it took once).
        public var retry = RetryPolicy(
            maxAttempts: 4, baseDelay: .milliseconds(250), maxDelay: .seconds(5), retryNonIdempotent: true,
            retryAfterCap: .seconds(10))

        public init(
            endpoint: String, tls: TLSOptions = .init(), resource: [(key: String, value: String)], version: String
        ) {
            self.endpoint = endpoint
            self.tls = tls
            self.resource = resource
            self.version = version
        }
    }

    /// What became of the spans so far, for `/metrics`.
    public struct Counts: Sendable, Hashable {
        /// Spans a collector took (2xx).
        public var exported = 0
        /// Spans dropped because the queue was full.
        public var droppedQueueFull = 0
        /// Spans dropped because their batch was refused or not answered after every attempt.
        public var droppedExportFailed = 0
        /// Spans waiting now.
        public var queued = 0
    }

    public let options: Options
    let http: any HTTPClient
    /// Told when exports start failing (with why) and when they succeed again (nil): once each, not every batch.
    let onFailure: @Sendable (String?) -> Void
    private let state: Locked<State>

    private struct State {
        var queue: [FinishedSpan] = []
        var counts = Counts()
        /// The run loop waiting for a full batch.
        var waiter: CheckedContinuation<Void, Never>?
        var failing = false
    }

    /// - Parameter http: sends the batches; give it a client without an instrument, so exports start no spans.
    public init(options: Options, http: any HTTPClient, onFailure: @escaping @Sendable (String?) -> Void = { _ in }) {
        self.options = options
        self.http = http
        self.onFailure = onFailure
        state = Locked(State())
    }

    public var counts: Counts {
        state.withLock { state in
            var counts = state.counts
            counts.queued = state.queue.count
            return counts
        }
    }

    public func record(_ span: FinishedSpan) {
        let capacity = options.queueCapacity, batchSize = options.batchSize
        let wake: CheckedContinuation<Void, Never>? = state.withLock { state in
            guard state.queue.count < capacity else {
                state.counts.droppedQueueFull += 1
                return nil
            }
            state.queue.append(span)
            guard state.queue.count >= batchSize, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return waiter
        }
        wake?.resume()
    }

    /// Sends the queue every `interval` or whenever a batch is full, until the task is cancelled.
    public func run() async {
        while !Task.isCancelled {
            await waitForBatch()
            if Task.isCancelled { return }  // what is queued is left to `flush`, which is not cancelled
            await sendQueued(retry: options.retry, timeout: options.timeout)
        }
    }

    /// Sends what is queued now, each batch once (no retries, at most 2 s each): on shutdown, after `run` has
    /// stopped, so a collector that is down delays the exit by little.
    public func flush() async {
        await sendQueued(retry: .none, timeout: min(options.timeout, .seconds(2)))
    }

    /// Returns after `interval`, when a batch is full, or when the task is cancelled.
    private func waitForBatch() async {
        let interval = options.interval
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: interval) }
            group.addTask { await self.batchFull() }
            await group.next()
            group.cancelAll()
        }
    }

    private func batchFull() async {
        let batchSize = options.batchSize
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now: Bool = state.withLock { state in
                    // Checked under the lock that `onCancel` takes: a cancellation is seen here or there.
                    if state.queue.count >= batchSize || Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }

    /// Sends the queue in batches of at most `batchSize`, oldest first; once cancelled, leaves the rest to `flush`.
    private func sendQueued(retry: RetryPolicy, timeout: Duration) async {
        while !Task.isCancelled {
            let batch: [FinishedSpan] = state.withLock { state in
                let count = min(state.queue.count, options.batchSize)
                defer { state.queue.removeFirst(count) }
                return Array(state.queue.prefix(count))
            }
            if batch.isEmpty { return }
            await send(batch, retry: retry, timeout: timeout)
            if batch.count < options.batchSize { return }
        }
    }

    private func send(_ batch: [FinishedSpan], retry: RetryPolicy, timeout: Duration) async {
        var failure: String?
        do {
            let body = try OTLPTraceJSON.body(batch, resource: options.resource, scope: ("sluice", options.version))
            let response = try await http.execute(
                HTTPRequest(
                    method: "POST", url: options.endpoint, headers: [("Content-Type", "application/json")], body: body,
                    timeout: timeout, tls: options.tls, retry: retry))
            if !(200..<300).contains(response.status) {
                let text = String(decoding: response.body.prefix(200), as: UTF8.self)
                failure = "the collector answered HTTP \(response.status): \(text)"
            }
        } catch {
            failure = "\(error)"
        }
        if failure != nil, Task.isCancelled {
            // Stopped while sending (shutdown), not refused: the batch goes back to the front for `flush`. The
            // collector may have taken it already; OTLP allows a batch to arrive twice, not a span to be lost.
            state.withLock { $0.queue.insert(contentsOf: batch, at: 0) }
            return
        }
        let report: String?? = state.withLock { state in
            if failure == nil {
                state.counts.exported += batch.count
            } else {
                state.counts.droppedExportFailed += batch.count
            }
            guard state.failing != (failure != nil) else { return .none }
            state.failing = failure != nil
            return .some(failure)
        }
        if case .some(let change) = report { onFailure(change) }
    }
}
