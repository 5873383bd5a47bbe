import Foundation
import SluiceCore
import SluiceTestSupport
import Testing

/// The dashboard's JavaScript names the phases (its filter) and the event types (one SSE listener per type: the
/// stream sends each event under its type's name, so a type missing from the list never reaches the page live).
/// Both lists must be Sluice's own: a phase or an event type added in Swift and forgotten in app.js fails here.
struct DashboardListsTests {
    /// The quoted strings of `const NAME = [...]` in app.js.
    static func list(_ name: String) throws -> [String] {
        let path = repositoryRoot() + "/Sources/SluiceAPI/Dashboard/ui/app.js"
        let source = try String(contentsOfFile: path, encoding: .utf8)
        guard let start = source.range(of: "const \(name) = ["),
            let end = source.range(of: "];", range: start.upperBound..<source.endIndex)
        else { throw SupportError("no `const \(name) = [...]` in \(path)") }
        let body = source[start.upperBound..<end.lowerBound]
        return body.split(separator: "'", omittingEmptySubsequences: false).enumerated()
            .filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    @Test func thePageKnowsEveryPhaseAndEveryEventType() throws {
        #expect(try Self.list("PHASES") == Phase.allCases.map(\.rawValue))
        #expect(try Set(Self.list("EVENT_TYPES")) == Set(EventType.all.map(\.rawValue)))
        #expect(try Self.list("EVENT_TYPES").count == EventType.all.count, "no type twice")
    }
}
