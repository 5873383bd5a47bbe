import Foundation
import SluiceCore
@testable import SluiceHTTP
import Testing
import Tracing

/// The trace headers `W3CTracer` puts on every outbound call, replaced without Foundation.
struct TraceHeaderTests {
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
