import Foundation
import SluiceHTTP
import SluiceTestSupport
import Testing

/// Issue #4: HTTP/2 where the server offers it. A real Caddy answers with the protocol it saw
/// (`{http.request.proto}`), and the response carries the version libcurl negotiated.
@Suite("CurlClient negotiates HTTP/2 with a real Caddy when offered, HTTP/1.1 otherwise")
struct CurlClientHTTPVersionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let tls: Bool
        /// What Caddy offers by ALPN (TLS only).
        let protocols: [String]
        let expected: HTTPVersion
        /// Go's `Request.Proto` as Caddy reports it.
        let serverSaw: String
        var testDescription: String { name }
    }

    static let cases = [
        Case(name: "TLS, Caddy offers h2 and h1 by ALPN: HTTP/2", tls: true, protocols: ["h1", "h2"],
            expected: .http2, serverSaw: "HTTP/2.0"),
        Case(name: "TLS, Caddy offers only h1: HTTP/1.1", tls: true, protocols: ["h1"],
            expected: .http1_1, serverSaw: "HTTP/1.1"),
        Case(name: "plain HTTP (no ALPN, no h2c): HTTP/1.1", tls: false, protocols: ["h1", "h2"],
            expected: .http1_1, serverSaw: "HTTP/1.1"),
    ]

    @Test(arguments: cases)
    func negotiatedVersion(_ example: Case) async throws {
        let fixtures = example.tls ? try TLSFixtures() : nil
        let caddy = try await CaddyServer.start(backendBodies: [], tls: fixtures, protocols: example.protocols) { _ in
            ["handler": "static_response", "body": "{http.request.proto}"]
        }
        defer { caddy.stop() }
        let client = try CurlClient()
        let tls = fixtures.map { TLSOptions(ca: .file($0.caCertificate)) } ?? TLSOptions()
        // Several in flight at once: every one of them, not just the first, goes over the negotiated version.
        let responses = try await withThrowingTaskGroup(of: HTTPResponse.self) { group in
            for _ in 0..<8 {
                group.addTask { try await client.execute(HTTPRequest(url: caddy.proxyURL, tls: tls)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(responses.count == 8)
        for response in responses {
            #expect(response.status == 200)
            #expect(response.httpVersion == example.expected)
            #expect(String(decoding: response.body, as: UTF8.self) == example.serverSaw)
        }
    }
}
