import Foundation
import Tracing

/// The body of an OTLP/HTTP trace export in JSON (`Content-Type: application/json`): an `ExportTraceServiceRequest`
/// in the protobuf JSON mapping, with the differences the OTLP specification makes ("JSON Protobuf Encoding"):
/// trace and span ids are lowercase hex, not base64; enums (span kind, status code) are numbers; field names are
/// lowerCamelCase. 64-bit integers (times, `intValue`) are strings, as the protobuf JSON mapping writes them.
public enum OTLPTraceJSON {
    /// One request holding `spans`, all of one resource (`resource`: `service.name` and the like) and one
    /// instrumentation scope.
    public static func body(
        _ spans: [FinishedSpan], resource: [(key: String, value: String)], scope: (name: String, version: String)
    ) throws -> Data {
        let request = Request(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: resource.map { KeyValue(key: $0.key, value: .string($0.value)) }),
                scopeSpans: [
                    ScopeSpans(scope: Scope(name: scope.name, version: scope.version), spans: spans.map(Span.init))
                ])
        ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try encoder.encode(request)
    }

    /// The OTLP `SpanKind` number.
    static func kind(_ kind: SpanKind) -> Int {
        switch kind {
        case .internal: 1
        case .server: 2
        case .client: 3
        case .producer: 4
        case .consumer: 5
        }
    }

    struct Request: Encodable {
        var resourceSpans: [ResourceSpans]
    }
    struct ResourceSpans: Encodable {
        var resource: Resource
        var scopeSpans: [ScopeSpans]
    }
    struct Resource: Encodable {
        var attributes: [KeyValue]
    }
    struct ScopeSpans: Encodable {
        var scope: Scope
        var spans: [Span]
    }
    struct Scope: Encodable {
        var name: String
        var version: String
    }

    struct Span: Encodable {
        var traceId: String
        var spanId: String
        var parentSpanId: String?
        var traceState: String?
        var name: String
        var kind: Int
        var startTimeUnixNano: String
        var endTimeUnixNano: String
        var attributes: [KeyValue]
        var events: [Event]
        var status: Status?

        init(_ span: FinishedSpan) {
            traceId = span.traceID.description
            spanId = span.spanID.description
            parentSpanId = span.parentSpanID?.description
            traceState = span.traceState
            name = span.name
            kind = OTLPTraceJSON.kind(span.kind)
            startTimeUnixNano = String(span.startNanoseconds)
            endTimeUnixNano = String(span.endNanoseconds)
            attributes = KeyValue.list(span.attributes)
            events = span.events.map {
                Event(
                    timeUnixNano: String($0.nanosecondsSinceEpoch), name: $0.name,
                    attributes: KeyValue.list($0.attributes))
            }
            status = span.status.map { Status(code: $0.code == .ok ? 1 : 2, message: $0.message) }
        }
    }
    struct Event: Encodable {
        var timeUnixNano: String
        var name: String
        var attributes: [KeyValue]
    }
    struct Status: Encodable {
        /// 1 ok, 2 error (0, unset, is left out with the whole status).
        var code: Int
        var message: String?
    }

    struct KeyValue: Encodable {
        var key: String
        var value: AnyValue

        /// The attributes sorted by key, so a body is the same bytes for the same span.
        static func list(_ attributes: SpanAttributes) -> [KeyValue] {
            var list: [KeyValue] = []
            attributes.forEach { key, value in list.append(KeyValue(key: key, value: AnyValue(value))) }
            return list.sorted { $0.key < $1.key }
        }
    }

    /// OTLP's `AnyValue`: one of its `*Value` fields.
    indirect enum AnyValue: Encodable {
        case string(String)
        case int(Int64)
        case double(Double)
        case bool(Bool)
        case array([AnyValue])

        init(_ attribute: SpanAttribute) {
            switch attribute {
            case .int32(let value): self = .int(Int64(value))
            case .int64(let value): self = .int(value)
            case .int32Array(let values): self = .array(values.map { .int(Int64($0)) })
            case .int64Array(let values): self = .array(values.map { .int($0) })
            case .double(let value): self = .double(value)
            case .doubleArray(let values): self = .array(values.map { .double($0) })
            case .bool(let value): self = .bool(value)
            case .boolArray(let values): self = .array(values.map { .bool($0) })
            case .string(let value): self = .string(value)
            case .stringArray(let values): self = .array(values.map { .string($0) })
            case .stringConvertible(let value): self = .string("\(value)")
            case .stringConvertibleArray(let values): self = .array(values.map { .string("\($0)") })
            default: self = .string("\(attribute)")
            }
        }

        enum CodingKeys: String, CodingKey {
            case stringValue, intValue, doubleValue, boolValue, arrayValue
        }
        struct ArrayValue: Encodable {
            var values: [AnyValue]
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .string(let value): try container.encode(value, forKey: .stringValue)
            case .int(let value): try container.encode(String(value), forKey: .intValue)
            case .double(let value): try container.encode(value, forKey: .doubleValue)
            case .bool(let value): try container.encode(value, forKey: .boolValue)
            case .array(let values): try container.encode(ArrayValue(values: values), forKey: .arrayValue)
            }
        }
    }
}
