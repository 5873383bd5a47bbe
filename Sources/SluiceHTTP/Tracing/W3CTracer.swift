import Instrumentation
import Tracing
import W3CTraceContext

/// A tracer that propagates W3C trace context (`traceparent`, `tracestate`) and records nothing: each span gets
/// its own span id in its parent's trace (or a new trace), so what Sluice logs, stores and sends on carries one trace
/// id from the API request through the event log to every outbound call. Exporting spans (OTLP) is another tracer's
/// job (docs/operations.md, "Traces"); this one allocates no more than the span's context.
public struct W3CTracer: Tracer {
    public init() {}

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> W3CSpan {
        var context = context()
        let parent = context.traceContext
        context.traceContext = TraceContext(
            traceID: parent?.traceID ?? .random(), spanID: .random(), flags: parent?.flags ?? .sampled,
            state: parent?.state ?? TraceState())
        return W3CSpan(context: context, operationName: operationName)
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
        injector.inject(trace.traceParentHeaderValue, forKey: TraceHeader.traceparent, into: &carrier)
        if let state = trace.traceStateHeaderValue {
            injector.inject(state, forKey: TraceHeader.tracestate, into: &carrier)
        }
    }
}

/// A span of `W3CTracer`: its context carries the trace; it records no attributes, events or status.
public struct W3CSpan: Tracing.Span {
    public let context: ServiceContext
    public var operationName: String {
        get { name }
        nonmutating set {}
    }
    let name: String

    init(context: ServiceContext, operationName: String) {
        self.context = context
        name = operationName
    }

    public var attributes: SpanAttributes {
        get { [:] }
        nonmutating set {}
    }
    public var isRecording: Bool { false }
    public func setStatus(_ status: SpanStatus) {}
    public func addEvent(_ event: SpanEvent) {}
    public func recordError<Instant: TracerInstant>(
        _ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant
    ) {}
    public func addLink(_ link: SpanLink) {}
    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {}
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
        carrier.removeAll { $0.name.caseInsensitiveCompare(key) == .orderedSame }
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
