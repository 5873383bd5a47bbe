import Tracing
import W3CTraceContext

/// A span that has ended, as `W3CTracer` recorded it: what an exporter sends.
public struct FinishedSpan: Sendable {
    public var traceID: TraceID
    public var spanID: SpanID
    /// The span this one is a child of; nil for a trace's first span.
    public var parentSpanID: SpanID?
    /// The W3C `tracestate` the span was started with, when there was one.
    public var traceState: String?
    public var name: String
    public var kind: SpanKind
    /// Nanoseconds since the Unix epoch.
    public var startNanoseconds: UInt64
    public var endNanoseconds: UInt64
    public var attributes: SpanAttributes = [:]
    public var events: [SpanEvent] = []
    /// Nil: unset.
    public var status: SpanStatus?

    public init(
        traceID: TraceID, spanID: SpanID, parentSpanID: SpanID?, traceState: String?, name: String, kind: SpanKind,
        startNanoseconds: UInt64, endNanoseconds: UInt64, attributes: SpanAttributes = [:], events: [SpanEvent] = [],
        status: SpanStatus? = nil
    ) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.traceState = traceState
        self.name = name
        self.kind = kind
        self.startNanoseconds = startNanoseconds
        self.endNanoseconds = endNanoseconds
        self.attributes = attributes
        self.events = events
        self.status = status
    }
}

/// Where `W3CTracer` hands every span when it ends. Called on the task that ended the span (a tick's, a request's),
/// so it must return at once: never wait, never do I/O.
public protocol SpanSink: Sendable {
    func record(_ span: FinishedSpan)
}
