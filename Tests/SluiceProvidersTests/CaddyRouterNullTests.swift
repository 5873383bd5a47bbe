import Foundation
import Testing

@testable import SluiceProviders

/// What counts as Caddy's `null` answer (a config path that holds nothing): the JSON document `null`
/// alone, with JSON whitespace (space, tab, LF, CR) around it, and nothing else.
@Suite struct CaddyRouterNullTests {
    @Test(arguments: [
        "null", " null\n", "null\n", "\t\r\n null \r\n\t", "\n\nnull",
    ])
    func theJSONNullWithWhitespaceIsNull(_ body: String) {
        #expect(CaddyRouter.isNull(Data(body.utf8)))
    }

    @Test(arguments: [
        "", " ", "nul", "nullx", "null null", "\"null\"", "Null", "NULL", "[null]", "{}", "n", "xnull",
        "null,", "{\"handler\":\"reverse_proxy\"}", "0",
    ])
    func anythingElseIsNotNull(_ body: String) {
        #expect(!CaddyRouter.isNull(Data(body.utf8)))
    }

    @Test func aSliceOfALargerBufferIsReadFromItsOwnStart() {
        let buffer = Data("xx null\nyy".utf8)
        #expect(CaddyRouter.isNull(buffer[2..<8]))
        #expect(!CaddyRouter.isNull(buffer[1..<8]))
    }
}
