import Foundation
import SluiceCore
import SluiceHTTP
import Testing

@testable import SluiceProviders

/// How `WebProvider` finds a number at a dotted JSON path, and what counts as no data.
@Suite struct MetricsWebProviderTests {
    static let document = #"""
        {"data": {"items": [{"value": 0.25, "text": "0.5", "nan": "NaN", "none": null, "flag": true}],
                  "empty": [], "count": 7}}
        """#

    func provider(path: String, status: Int = 200, body: String = document) -> WebProvider {
        try! WebProvider(
            name: "stats", config: WebConfig(url: "http://127.0.0.1:1/stats?token=abc", jsonPath: path),
            client: ScriptedHTTPClient(status: status, body: body))
    }

    @Test(arguments: [
        ("data.items.0.value", 0.25),
        ("data.items.0.text", 0.5),
        ("data.count", 7),
    ])
    func readsTheNumberAtThePath(path: String, expected: Double) async throws {
        #expect(try await provider(path: path).sample(query: "") == expected)
    }

    @Test(arguments: [
        ("data.items.0.nan", "NaN"),
        ("data.items.0.none", "null"),
        ("data.empty.0", "0 elements"),
        ("data.items.0.none.deeper", "null"),
    ])
    func noData(path: String, reasonContains: String) async throws {
        let reading = try await provider(path: path).read(query: "")
        guard case .noData(let reason) = reading else {
            Issue.record("expected no data, got \(reading)")
            return
        }
        #expect(reason.contains(reasonContains))
    }

    @Test(arguments: [
        ("data.itemz.0.value", #"no key "itemz" at $.data (keys: count, empty, items)"#),
        ("data.items.first", #"$.data.items is a list, "first" is not an index"#),
        ("data.items.0.flag", "a boolean, not a number"),
        ("data.items.0", "an object, not a number"),
        ("data.count.x", "$.data.count is a number, not an object or a list"),
    ])
    func pathThatLeadsNowhereIsAnErrorSayingWhere(path: String, message: String) async throws {
        let error = try await #require(throws: ProviderError.self) { try await provider(path: path).read(query: "") }
        #expect(error.code == .badResponse)
        #expect(error.message.contains(message), "\(error.message)")
        #expect(!error.description.contains("token=abc"))
    }

    @Test func notJSONAndHTTPErrorsAreErrors() async throws {
        let html = try await #require(throws: ProviderError.self) {
            try await provider(path: "a", body: "<html>oops</html>").read(query: "")
        }
        #expect(html.code == .badResponse)
        #expect(html.message.contains("not JSON: <html>oops</html>"))
        let missing = try await #require(throws: ProviderError.self) {
            try await provider(path: "a", status: 404, body: "no such page").read(query: "")
        }
        #expect(missing.code == .rejected)
        #expect(missing.status == 404)
    }

    @Test func queryIsFilledIntoTheURLWhereAsked() async throws {
        let client = ScriptedHTTPClient(status: 200, body: #"{"v": 1}"#)
        let config = WebConfig(
            url: "http://127.0.0.1:1/q?expr={{query}}", jsonPath: "v", headers: ["X-Api-Key": "k"], timeout: .seconds(2)
        )
        let provider = try WebProvider(name: "stats", config: config, client: client)
        #expect(try await provider.sample(query: "errors / total") == 1)
        let request = try #require(client.requests.first)
        #expect(request.url == "http://127.0.0.1:1/q?expr=errors%20%2F%20total")
        #expect(request.headers.contains { $0.name == "X-Api-Key" && $0.value == "k" })
        #expect(request.timeout == .seconds(2))
    }
}
