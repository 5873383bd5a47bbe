import Foundation
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing
import Tracing

/// `OTLPExporter` and `W3CTracer`'s span sink: the queue's bound, the batches a strict OTLP receiver takes, retries on
/// 503, and the JSON form (docs/operations.md "Exporting spans").
struct OTLPExporterTests {
    static let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    /// A client that never answers until cancelled: a collector that takes the connection and hangs.
    struct HangingClient: HTTPClient {
        func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
            try await Task.sleep(for: .seconds(3600))
            throw CancellationError()
        }
    }

    static func options(_ endpoint: String) -> OTLPExporter.Options {
        var options = OTLPExporter.Options(
            endpoint: endpoint + "/v1/traces", resource: [("service.name", "sluice-test")], version: "0.0.0-test")
        options.interval = .milliseconds(50)
        options.retry = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(10), maxDelay: .milliseconds(50), retryNonIdempotent: true)
        return options
    }

    @Test
    func aFullQueueDropsAndCountsSpansInsteadOfWaiting() async throws {
        var options = Self.options("http://127.0.0.1:9")
        options.queueCapacity = 100
        options.batchSize = 10
        let exporter = OTLPExporter(options: options, http: HangingClient())
        let tracer = W3CTracer(sink: exporter)
        let context = tracer.context(continuing: Self.traceparent)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await exporter.run() }
            // The run loop takes one batch and hangs in it; every span after the queue is full is dropped at once.
            for index in 0..<10_000 {
                tracer.withSpan("span \(index)", context: context) { _ in }
            }
            group.cancelAll()
        }
        let counts = exporter.counts
        // The batch the hanging send held (if it took one before the queue filled) is back in the queue for the
        // shutdown's flush: nothing was exported or failed, the queue is full, the rest was dropped.
        #expect((100...110).contains(counts.queued) && counts.exported == 0 && counts.droppedExportFailed == 0, "\(counts)")
        #expect(counts.droppedQueueFull + counts.queued == 10_000, "\(counts)")
    }

    /// An exporter to `receiver` and the failures it reports.
    static func exporter(to receiver: OTLPReceiver) throws -> (OTLPExporter, Locked<[String?]>) {
        let failures = Locked<[String?]>([])
        let exporter = OTLPExporter(options: Self.options(receiver.endpoint), http: try CurlClient()) { failure in
            failures.withLock { $0.append(failure) }
        }
        return (exporter, failures)
    }

    @Test
    func batchesReachAStrictReceiverAndA503IsSentAgain() async throws {
        let receiver = try await OTLPReceiver()
        defer { receiver.stop() }
        try receiver.beUnavailable(for: 2)
        let (exporter, failures) = try Self.exporter(to: receiver)
        let tracer = W3CTracer(sink: exporter)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await exporter.run() }
            tracer.withSpan("POST /v1/rollouts/r-1/rollback", context: tracer.context(continuing: Self.traceparent), ofKind: .server) {
                span in
                span.attributes["http.response.status_code"] = 200
                span.attributes["request.id"] = "ci-42"
                tracer.withSpan("effects", context: span.context) { inner in
                    inner.setStatus(SpanStatus(code: .error, message: "router refused"))
                    inner.recordError(HTTPError(code: .connectFailed, url: "http://127.0.0.1:9", message: "refused"))
                }
            }
            // Until the exporter has the answer: the receiver records the spans before it answers.
            try await waitUntil("two spans exported", timeout: .seconds(20)) { exporter.counts.exported == 2 }
            group.cancelAll()
        }
        let errors = try receiver.errors()
        #expect(errors.isEmpty, "\(errors)")
        let statuses = try receiver.statuses()
        #expect(statuses.prefix(3) == [503, 503, 200] && statuses.dropFirst(3).allSatisfy { $0 == 200 }, "\(statuses)")
        let spans = try receiver.spans()
        let server = try #require(spans.first { $0.kind == 2 })
        let effects = try #require(spans.first { $0.name == "effects" })
        #expect(server.traceId == "4bf92f3577b34da6a3ce929d0e0e4736" && server.parentSpanId == "00f067aa0ba902b7")
        #expect(effects.traceId == server.traceId && effects.parentSpanId == server.spanId && effects.kind == 1)
        #expect(effects.status == 2)
        #expect(server.attributes["http.response.status_code"] == .int(200))
        #expect(server.attributes["request.id"] == .string("ci-42"))
        #expect(spans.allSatisfy { $0.service == "sluice-test" && $0.scope == "sluice" })
        let counts = exporter.counts
        #expect(counts.exported == 2 && counts.droppedExportFailed == 0 && counts.droppedQueueFull == 0, "\(counts)")
        #expect(failures.current.isEmpty, "retried within one export: no failure to report")
    }

    @Test
    func aBatchThatFailsEveryAttemptIsDroppedCountedAndReportedOnce() async throws {
        let receiver = try await OTLPReceiver()
        defer { receiver.stop() }
        try receiver.beUnavailable(for: 8)  // two batches of four attempts
        let (exporter, failures) = try Self.exporter(to: receiver)
        let tracer = W3CTracer(sink: exporter)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await exporter.run() }
            tracer.withSpan("first") { _ in }
            try await waitUntil("the first batch dropped", timeout: .seconds(20)) { exporter.counts.droppedExportFailed == 1 }
            tracer.withSpan("second") { _ in }
            try await waitUntil("the second batch dropped", timeout: .seconds(20)) { exporter.counts.droppedExportFailed == 2 }
            tracer.withSpan("third") { _ in }
            try await waitUntil("the third span taken", timeout: .seconds(20)) { exporter.counts.exported == 1 }
            group.cancelAll()
        }
        #expect(try receiver.spans().map(\.name) == ["third"])
        let reported = failures.current
        #expect(reported.count == 2 && reported[0]?.contains("503") == true && reported[1] == nil, "\(reported)")
    }

    @Test
    func theBodyIsOTLPJSONWithHexIDsAndNumberedEnums() throws {
        let span = FinishedSpan(
            traceID: try #require(W3CTracer().context(continuing: Self.traceparent).traceContext?.traceID),
            spanID: .random(), parentSpanID: nil, traceState: "vendor=v1", name: "PATCH", kind: .client,
            startNanoseconds: 1_796_000_000_000_000_001, endNanoseconds: 1_796_000_000_500_000_000,
            attributes: ["server.port": .int64(2019), "b": .bool(true), "d": .double(0.5), "list": .stringArray(["x", "y"])])
        let body = try OTLPTraceJSON.body([span], resource: [("service.name", "sluice")], scope: ("sluice", "1.2.3"))
        let root = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        let resourceSpans = try #require((root["resourceSpans"] as? [[String: Any]])?.first)
        let scopeSpans = try #require((resourceSpans["scopeSpans"] as? [[String: Any]])?.first)
        let encoded = try #require((scopeSpans["spans"] as? [[String: Any]])?.first)
        #expect(encoded["traceId"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect((encoded["spanId"] as? String)?.wholeMatch(of: /[0-9a-f]{16}/) != nil)
        #expect(encoded["parentSpanId"] == nil && encoded["traceState"] as? String == "vendor=v1")
        #expect(encoded["kind"] as? Int == 3)
        #expect(encoded["startTimeUnixNano"] as? String == "1796000000000000001", "64-bit times as strings")
        let attributes = try #require(encoded["attributes"] as? [[String: Any]])
        #expect(attributes.map { $0["key"] as? String } == ["b", "d", "list", "server.port"], "sorted by key")
        #expect((attributes[3]["value"] as? [String: String]) == ["intValue": "2019"])
        #expect((attributes[0]["value"] as? [String: Bool]) == ["boolValue": true])
        #expect(String(decoding: body, as: UTF8.self).contains(#""scope":{"name":"sluice","version":"1.2.3"}"#))
    }

    /// The receiver the export tests trust refuses what a collector would: an unknown field, a wrong type, ids in
    /// base64 (protobuf's JSON mapping, not OTLP's hex), a wrong Content-Type; and takes a well-formed body.
    @Test(arguments: [
        (#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"ok","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#, "application/json", 200),
        (#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"x","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2","colour":"red"}]}]}]}"#, "application/json", 400),
        (#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"x","kind":"internal-ish","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#, "application/json", 400),
        (#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"S/kvNXezTaajzpKdDg5HNg==","spanId":"APBnqguqArc=","name":"x","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#, "application/json", 400),
        (#"{"resourceSpans":[]}"#, "application/x-protobuf", 415),
    ])
    func theReceiverRefusesWhatACollectorWould(_ body: String, _ contentType: String, _ status: Int) async throws {
        let receiver = try await OTLPReceiver()
        defer { receiver.stop() }
        let response = try await CurlClient().execute(
            HTTPRequest(
                method: "POST", url: receiver.endpoint + "/v1/traces", headers: [("Content-Type", contentType)],
                body: Data(body.utf8)))
        #expect(response.status == status, "\(String(decoding: response.body, as: UTF8.self))")
        #expect(try receiver.spans().count == (status == 200 ? 1 : 0))
    }

    @Test
    func withoutASinkSpansRecordNothing() {
        let tracer = W3CTracer()
        #expect(!tracer.isRecording)
        tracer.withSpan("tick") { span in
            span.attributes["rollout.id"] = "r-1"
            #expect(!span.isRecording && span.attributes["rollout.id"] == nil)
        }
    }
}
