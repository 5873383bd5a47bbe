import Hummingbird
import HummingbirdCore
import HTTPTypes
import SluiceHTTP
import Tracing

/// Gives every API request an id and a span (docs/api.md, "Request ids and trace context").
///
/// The id is the request's `X-Request-Id` when it is well formed (`RequestID.accepts`), else a new one; it is sent
/// back in `X-Request-Id` (error answers too) and put into the request's `ServiceContext`, from where every log line
/// the request causes (`LogContext.metadataProvider`) and every event it records (`requestID`) take it. With a
/// tracer, the request's W3C `traceparent`/`tracestate` are the parent of the request's span.
struct RequestContextMiddleware: RouterMiddleware {
    typealias Context = APIContext
    let tracer: (any Tracer)?

    func handle(
        _ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response
    ) async throws -> Response {
        let id = request.headers[RequestID.header].flatMap { RequestID.accepts($0) ? $0 : nil } ?? RequestID.make()
        var serviceContext = ServiceContext.current ?? .topLevel
        serviceContext.requestID = id
        var response: Response
        if let tracer, !Self.untraced.contains(request.uri.path) {
            response = try await Self.inSpan(tracer, request, serviceContext) { try await next(request, context) }
        } else {
            response = try await ServiceContext.withValue(serviceContext) { try await next(request, context) }
        }
        response.headers[RequestID.header] = id
        return response
    }

    /// Probes and scrapes: every few seconds from kubelet and Prometheus, they would fill a trace backend with spans
    /// nobody looks for. They keep their request id.
    static let untraced: Set<String> = ["/healthz", "/readyz", "/metrics"]

    /// `body` in a server span whose parent is the request's trace context (a new trace without one).
    private static func inSpan<Traced: Tracer>(
        _ tracer: Traced, _ request: Request, _ context: ServiceContext, _ body: () async throws -> Response
    ) async throws -> Response {
        var context = context
        tracer.extract(request.headers, into: &context, using: HTTPFieldsExtractor())
        return try await tracer.withSpan("\(request.method) \(request.uri.path)", context: context, ofKind: .server) {
            span in
            // Recorded only when spans are exported (W3CTracer with a sink); a no-op otherwise.
            span.attributes["http.request.method"] = "\(request.method)"
            span.attributes["url.path"] = request.uri.path
            span.attributes["request.id"] = context.requestID
            let response = try await body()
            span.attributes["http.response.status_code"] = Int(response.status.code)
            if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
            return response
        }
    }
}

/// Reads trace headers from a Hummingbird request.
struct HTTPFieldsExtractor: Extractor {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        guard let name = HTTPField.Name(key) else { return nil }
        return carrier[name]
    }
}

/// Request ids: which are accepted from a client, and how new ones are made.
public enum RequestID {
    /// `X-Request-Id`, the header the id comes in and goes back in.
    public static let header = HTTPField.Name("X-Request-Id")!
    /// The longest id accepted from a client.
    public static let maxLength = 128

    /// Whether a client's id is used as it is: 1 to `maxLength` characters of `A-Z a-z 0-9 - _ . :` (UUIDs,
    /// ULIDs, the hex ids of proxies and load balancers). Anything else is replaced, so an id can go into a log line,
    /// an event and a header without escaping or truncating.
    public static func accepts(_ id: String) -> Bool {
        let bytes = id.utf8
        guard (1...maxLength).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: ":"):
                true
            default: false
            }
        }
    }

    /// A new id: 32 lowercase hex digits (128 random bits).
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64, low = generator.next() as UInt64
        return hex(high) + hex(low)
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
