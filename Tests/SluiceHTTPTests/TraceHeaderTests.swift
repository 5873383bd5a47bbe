import Foundation
import SluiceCore
@testable import SluiceHTTP
import Testing
import Tracing
import W3CTraceContext

/// The trace headers `W3CTracer` puts on every outbound call, written and replaced without Foundation.
struct TraceHeaderTests {
    @Test("traceparentValue is the package's traceParentHeaderValue, for any ids and flags")
    func traceparentAsThePackageWritesIt() {
        var contexts = [
            TraceContext(
                traceID: TraceID(bytes: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)),
                spanID: SpanID(bytes: (0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), flags: TraceFlags(rawValue: 0),
                state: TraceState()),
            try! TraceContext(traceParentHeaderValue: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ]
        for flags: UInt8 in [0x00, 0x01, 0x0f, 0x10, 0xa5, 0xff] {
            contexts.append(
                TraceContext(traceID: .random(), spanID: .random(), flags: TraceFlags(rawValue: flags), state: TraceState()))
        }
        for context in contexts {
            #expect(context.traceparentValue == context.traceParentHeaderValue)
            #expect(context.traceparentValue.utf8.count == 55)
        }
    }

    @Test("the injector replaces a field of the same name in any case, by bytes or by Foundation, and no other")
    func injectorReplacesSameName() {
        var fields: [(name: String, value: String)] = [
            ("TraceParent", "stale"), ("traceparent-x", "kept"), ("Accept", "kept"), ("TRACEPARENT", "stale"),
            ("tracepärent", "kept"),
        ]
        HeaderFieldsInjector().inject("new", forKey: "traceparent", into: &fields)
        #expect(fields.map(\.name) == ["traceparent-x", "Accept", "tracepärent", "traceparent"])
        #expect(fields.last?.value == "new")
        for (name, key) in [
            ("traceparent", "TRACEPARENT"), ("tracestate", "traceparent"), ("a", "A"), ("@", "`"), ("[", "{"),
            ("Straße", "STRASSE"), ("tracepärent", "TRACEPÄRENT"), ("x", "xx"), ("", ""),
        ] {
            #expect(
                ASCIIBytes.sameFieldName(name, key) == (name.caseInsensitiveCompare(key) == .orderedSame),
                "\(name) \(key)")
        }
    }
}
