import Instrumentation
import SluiceCore
import Tracing
import W3CTraceContext

/// A tracer that propagates W3C trace context (`traceparent`, `tracestate`): each span gets its own span id in its
/// parent's trace (or a new trace), so what Sluice logs, stores and sends on carries one trace id from the API request
/// through the event log to every outbound call. Without a sink it records nothing and allocates no more than the
/// span's context; with one (OTLP export, docs/operations.md "Traces") each span keeps its kind, times, attributes,
/// events and status, and is handed to the sink when it ends.
public struct W3CTracer: Tracer {
    /// Receives every span when it ends; nil: spans record nothing.
    public let sink: (any SpanSink)?

    public init(sink: (any SpanSink)? = nil) {
        self.sink = sink
    }

    /// Whether spans are recorded (and so worth starting for an outbound call).
    public var isRecording: Bool { sink != nil }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> W3CSpan {
        var context = context()
        let parent = context.traceContext
        let trace = TraceContext(
            traceID: parent?.traceID ?? .random(), spanID: .random(), flags: parent?.flags ?? .sampled,
            state: parent?.state ?? TraceState())
        context.traceContext = trace
        guard let sink else { return W3CSpan(context: context, operationName: operationName, recorder: nil) }
        let recorder = SpanRecorder(
            FinishedSpan(
                traceID: trace.traceID, spanID: trace.spanID, parentSpanID: parent?.spanID,
                traceState: trace.traceStateHeaderValue, name: operationName, kind: kind,
                startNanoseconds: instant().nanosecondsSinceEpoch, endNanoseconds: 0),
            sink: sink)
        return W3CSpan(context: context, operationName: operationName, recorder: recorder)
    }

    public func forceFlush() {}

    /// Reads `traceparent` (and `tracestate`) from `carrier`; a malformed `traceparent` is ignored (a new trace
    /// starts), a malformed `tracestate` is dropped and the `traceparent` kept, as the W3C recommendation says.
    public func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract
    ) where Extract.Carrier == Carrier {
        guard let parent = extractor.extract(key: TraceHeader.traceparent, from: carrier),
            var trace = try? TraceContext(traceParentHeaderValue: parent)
        else { return }
        if let state = extractor.extract(key: TraceHeader.tracestate, from: carrier),
            let parsed = try? TraceContext(traceParentHeaderValue: parent, traceStateHeaderValue: state)
        {
            trace = parsed
        }
        context.traceContext = trace
    }

    public func inject<Carrier, Inject: Injector>(
        _ context: ServiceContext, into carrier: inout Carrier, using injector: Inject
    ) where Inject.Carrier == Carrier {
        guard let trace = context.traceContext else { return }
        injector.inject(trace.traceparentValue, forKey: TraceHeader.traceparent, into: &carrier)
        if let state = trace.traceStateHeaderValue {
            injector.inject(state, forKey: TraceHeader.tracestate, into: &carrier)
        }
    }
}

/// A span of `W3CTracer`: its context carries the trace. Without a recorder (no sink) it records no attributes,
/// events or status; with one, it records them until it ends, and ending it a second time does nothing.
public struct W3CSpan: Tracing.Span {
    public let context: ServiceContext
    let name: String
    let recorder: SpanRecorder?

    init(context: ServiceContext, operationName: String, recorder: SpanRecorder?) {
        self.context = context
        name = operationName
        self.recorder = recorder
    }

    public var operationName: String {
        get { recorder?.state.withLock { $0.span.name } ?? name }
        nonmutating set { recorder?.update { $0.name = newValue } }
    }

    public var attributes: SpanAttributes {
        get { recorder?.state.withLock { $0.span.attributes } ?? [:] }
        nonmutating set { recorder?.update { $0.attributes = newValue } }
    }

    public var isRecording: Bool { recorder?.state.withLock { !$0.ended } ?? false }

    public func setStatus(_ status: SpanStatus) {
        recorder?.update { span in
            // An `ok` is final; an error does not replace it (the OpenTelemetry span status rules).
            if span.status?.code != .ok { span.status = status }
        }
    }

    public func addEvent(_ event: SpanEvent) {
        recorder?.update { $0.events.append(event) }
    }

    public func recordError<Instant: TracerInstant>(
        _ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant
    ) {
        guard let recorder else { return }
        var attributes = attributes
        attributes["exception.type"] = "\(type(of: error))"
        attributes["exception.message"] = "\(error)"
        let event = SpanEvent(name: "exception", at: instant(), attributes: attributes)
        recorder.update { $0.events.append(event) }
    }

    public func addLink(_ link: SpanLink) {}

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        recorder?.end(at: instant().nanosecondsSinceEpoch)
    }
}

/// What a recording span holds until it ends; shared by the copies of its `W3CSpan`.
final class SpanRecorder: Sendable {
    struct State {
        var span: FinishedSpan
        var ended = false
    }
    let state: Locked<State>
    let sink: any SpanSink

    init(_ span: FinishedSpan, sink: any SpanSink) {
        state = Locked(State(span: span))
        self.sink = sink
    }

    /// Changes the span while it has not ended.
    func update(_ change: (inout FinishedSpan) -> Void) {
        state.withLock { state in
            if !state.ended { change(&state.span) }
        }
    }

    /// Ends the span once and hands it to the sink (outside the lock: the sink takes its own).
    func end(at nanoseconds: UInt64) {
        let finished: FinishedSpan? = state.withLock { state in
            guard !state.ended else { return nil }
            state.ended = true
            state.span.endNanoseconds = max(nanoseconds, state.span.startNanoseconds)
            return state.span
        }
        if let finished { sink.record(finished) }
    }
}

extension TraceContext {
    /// `traceParentHeaderValue` (version 00: `00-<trace id>-<span id>-<flags>`, lower-case hex), written into one
    /// string: the package's getter interpolates four strings and formats the flags with `String(_:radix:)`, ~6.5 k
    /// instructions where this takes a few hundred, and it runs on every outbound call (`TraceHeaderTests` compares
    /// the two).
    var traceparentValue: String {
        String(unsafeUninitializedCapacity: 55) { buffer in
            let digits: StaticString = "0123456789abcdef"
            var count = 0
            func put(_ byte: UInt8) {
                buffer[count] = byte
                count += 1
            }
            func hex(_ byte: UInt8) {
                put(digits.utf8Start[Int(byte >> 4)])
                put(digits.utf8Start[Int(byte & 0x0F)])
            }
            put(UInt8(ascii: "0"))
            put(UInt8(ascii: "0"))
            put(UInt8(ascii: "-"))
            withUnsafeBytes(of: traceID.bytes) { for byte in $0 { hex(byte) } }
            put(UInt8(ascii: "-"))
            withUnsafeBytes(of: spanID.bytes) { for byte in $0 { hex(byte) } }
            put(UInt8(ascii: "-"))
            hex(flags.rawValue)
            return count
        }
    }
}

/// The W3C Trace Context header names.
public enum TraceHeader {
    public static let traceparent = "traceparent"
    public static let tracestate = "tracestate"
}

/// The W3C trace context of the current span.
enum W3CTraceContextKey: ServiceContextKey {
    typealias Value = TraceContext
    static var nameOverride: String? { "w3c-trace-context" }
}

/// The id of the API request being answered (`X-Request-Id`).
enum RequestIDKey: ServiceContextKey {
    typealias Value = String
    static var nameOverride: String? { "request-id" }
}

extension ServiceContext {
    /// The W3C trace context of the current span, when a `W3CTracer` started one or extracted it.
    public var traceContext: TraceContext? {
        get { self[W3CTraceContextKey.self] }
        set { self[W3CTraceContextKey.self] = newValue }
    }

    /// The id of the API request this work is for (docs/api.md, "Request ids").
    public var requestID: String? {
        get { self[RequestIDKey.self] }
        set { self[RequestIDKey.self] = newValue }
    }
}

/// Header fields as `HTTPRequest` keeps them, for `Instrument.inject`: a field already present is replaced.
public struct HeaderFieldsInjector: Injector {
    public init() {}
    public func inject(_ value: String, forKey key: String, into carrier: inout [(name: String, value: String)]) {
        // Names compared without case on their bytes when ASCII (`ASCIIBytes.sameFieldName`): Foundation's
        // `caseInsensitiveCompare` cost ~1 k instructions a field, on every outbound call.
        carrier.removeAll { ASCIIBytes.sameFieldName($0.name, key) }
        carrier.append((key, value))
    }
}

/// A `[String: String]` of header values, for `Instrument.inject` and `extract` (stored trace context).
public struct DictionaryCarrier: Injector, Extractor {
    public init() {}
    public func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
    public func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}

extension Instrument {
    /// The `traceparent` of `context` as this instrument propagates it; nil when it carries no trace.
    public func traceparent(of context: ServiceContext) -> String? {
        var carrier: [String: String] = [:]
        inject(context, into: &carrier, using: DictionaryCarrier())
        return carrier[TraceHeader.traceparent]
    }

    /// `context` with the trace of a stored `traceparent` as its parent (unchanged when nil or malformed).
    public func context(continuing traceparent: String?, from context: ServiceContext = .topLevel) -> ServiceContext {
        guard let traceparent else { return context }
        var context = context
        extract([TraceHeader.traceparent: traceparent], into: &context, using: DictionaryCarrier())
        return context
    }
}
