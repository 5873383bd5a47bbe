import Foundation
import SluiceHTTP
import SluiceTestSupport
import Testing

@Suite("CurlClient streaming")
struct CurlClientStreamTests {
    /// `/state` of a `/drip` or `/hang` id on the loopback server.
    static func state(_ server: LoopbackHTTPServer, _ client: CurlClient, _ id: String) async throws -> String {
        String(
            decoding: try await client.execute(HTTPRequest(url: server.baseURL + "/state?id=\(id)")).body, as: UTF8.self
        )
    }

    @Test("chunks arrive while the server still holds the body open, then the body ends")
    func chunksBeforeTheEnd() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let id = UUID().uuidString
        let response = try await client.stream(
            HTTPRequest(url: server.baseURL + "/drip?id=\(id)&count=1&hold=1", auth: .bearer("t0k3n")),
            idleTimeout: .seconds(20))
        #expect(response.status == 200)
        #expect(response.header("transfer-encoding") == "chunked")
        var chunks = response.body.makeAsyncIterator()
        var text = ""
        while !text.contains("chunk 0\n"), let chunk = try await chunks.next() {
            text += String(decoding: chunk, as: UTF8.self)
        }
        #expect(text == "chunk 0\n")
        #expect(try await Self.state(server, client, id) == "open", "the body has not ended yet")
        _ = try await client.execute(HTTPRequest(url: server.baseURL + "/release?id=\(id)"))
        while let chunk = try await chunks.next() { text += String(decoding: chunk, as: UTF8.self) }
        #expect(text == "chunk 0\nend\n")
        try await waitUntil("the server to finish", timeout: .seconds(10)) {
            try await Self.state(server, client, id) == "done"
        }
    }

    @Test("cancelling the reading task aborts the transfer and the server sees the connection close")
    func cancelClosesTheConnection() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let id = UUID().uuidString
        let firstChunk = LockedFlag()
        let reader = Task {
            let response = try await client.stream(
                HTTPRequest(url: server.baseURL + "/drip?id=\(id)&count=1&hold=1"), idleTimeout: .seconds(20))
            var received = 0
            for try await chunk in response.body {
                received += chunk.count
                firstChunk.set()
            }
            return received
        }
        try await waitUntil("the first chunk", timeout: .seconds(10)) { firstChunk.isSet }
        #expect(try await Self.state(server, client, id) == "open")
        reader.cancel()
        // A cancelled reader's loop ends (AsyncStream's way) or, when the aborted transfer is reported first, throws
        // `.cancelled`; either way it never sees "end", which the server has not sent.
        switch await reader.result {
        case .success(let received): #expect(received == "chunk 0\n".utf8.count)
        case .failure(let error): #expect((error as? HTTPError)?.code == .cancelled, "\(error)")
        }
        try await waitUntil("the server to see the connection close", timeout: .seconds(10)) {
            try await Self.state(server, client, id) == "closed"
        }
    }

    @Test("dropping the body unread aborts the transfer")
    func droppingTheBodyCloses() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let id = UUID().uuidString
        do {
            let response = try await client.stream(
                HTTPRequest(url: server.baseURL + "/drip?id=\(id)&count=1&hold=1"), idleTimeout: .seconds(20))
            #expect(response.status == 200)
        }
        try await waitUntil("the server to see the connection close", timeout: .seconds(10)) {
            try await Self.state(server, client, id) == "closed"
        }
    }

    @Test("silence longer than the idle timeout fails the stream with timedOut and closes the connection")
    func idleTimeoutFires() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let id = UUID().uuidString
        let started = ContinuousClock.now
        let response = try await client.stream(
            HTTPRequest(url: server.baseURL + "/drip?id=\(id)&count=1&hold=1"), idleTimeout: .milliseconds(300))
        var text = ""
        let error = await #expect(throws: HTTPError.self) {
            for try await chunk in response.body { text += String(decoding: chunk, as: UTF8.self) }
        }
        #expect(error?.code == .timedOut)
        #expect(error?.message.contains("idle") == true, "\(String(describing: error))")
        #expect(text == "chunk 0\n")
        #expect(ContinuousClock.now - started < .seconds(10))
        try await waitUntil("the server to see the connection close", timeout: .seconds(10)) {
            try await Self.state(server, client, id) == "closed"
        }
    }

    @Test("a stream that keeps talking outlives both its idle timeout and the request's total timeout")
    func steadyStreamIsNotCutShort() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let started = ContinuousClock.now
        let response = try await client.stream(
            HTTPRequest(url: server.baseURL + "/drip?count=8&every_ms=100", timeout: .milliseconds(200)),
            idleTimeout: .milliseconds(600))
        let body = String(decoding: try await response.collect(), as: UTF8.self)
        #expect(body == (0..<8).map { "chunk \($0)\n" }.joined() + "end\n")
        #expect(ContinuousClock.now - started >= .milliseconds(700), "longer than both timeouts")
    }

    @Test("an error answer is a response whose body can be read; a refused connection throws")
    func errorsAndStatuses() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let response = try await client.stream(
            HTTPRequest(url: server.baseURL + "/status/404"), idleTimeout: .seconds(5))
        #expect(response.status == 404)
        #expect(String(decoding: try await response.collect(), as: UTF8.self) == "status")
        let port = try freePort()
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client.stream(HTTPRequest(url: "http://127.0.0.1:\(port)/"), idleTimeout: .seconds(5))
        }
        #expect(error?.code == .connectFailed)
    }

    @Test("TLS is verified for streams too")
    func tlsVerified() async throws {
        let tls = try TLSFixtures()
        let server = try await LoopbackHTTPServer(tls: tls)
        defer { server.stop() }
        let client = try CurlClient()
        let refused = await #expect(throws: HTTPError.self) {
            _ = try await client.stream(HTTPRequest(url: server.baseURL + "/drip?count=2"), idleTimeout: .seconds(5))
        }
        #expect(refused?.code == .tlsFailed)
        let response = try await client.stream(
            HTTPRequest(url: server.baseURL + "/drip?count=2", tls: TLSOptions(ca: .file(tls.caCertificate))),
            idleTimeout: .seconds(5))
        #expect(String(decoding: try await response.collect(), as: UTF8.self) == "chunk 0\nchunk 1\nend\n")
    }
}

/// A flag set from one task and polled from another.
final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
