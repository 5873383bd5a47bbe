import Foundation
import SluiceHTTP
import SluiceTestSupport
import Testing

/// Decoded `/echo` answer of the loopback server.
struct Echo: Decodable {
    var method: String
    var path: String
    var headers: [String: String]
    var body: String
}

func decodeEcho(_ response: HTTPResponse) throws -> Echo {
    try JSONDecoder().decode(Echo.self, from: response.body)
}

@Suite("CurlClient over plain HTTP")
struct CurlClientTests {
    @Test("sends method, headers and body", arguments: ["GET", "POST", "PUT", "PATCH", "DELETE"])
    func methods(method: String) async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let body = method == "GET" ? nil : Data("{\"n\":1}".utf8)
        let response = try await client.execute(HTTPRequest(
            method: method, url: server.baseURL + "/echo?x=1",
            headers: [("Content-Type", "application/json"), ("X-Sluice", "yes")], body: body))
        #expect(response.status == 200)
        #expect(response.header("content-type") == "application/json")
        let echo = try decodeEcho(response)
        #expect(echo.method == method)
        #expect(echo.path == "/echo?x=1")
        #expect(echo.headers["x-sluice"] == "yes")
        #expect(echo.body == (body == nil ? "" : "{\"n\":1}"))
        #expect(echo.headers["expect"] == nil)
    }

    @Test("HEAD returns headers and no body")
    func head() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let response = try await CurlClient().execute(HTTPRequest(method: "HEAD", url: server.baseURL + "/echo"))

        #expect(response.status == 200)
        #expect(response.body.isEmpty)
        #expect(response.header("Content-Length") != nil)
    }

    @Test("a bearer token goes in the Authorization header")
    func bearer() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let response = try await CurlClient().execute(HTTPRequest(url: server.baseURL + "/echo", auth: .bearer("t0k3n")))
        #expect(try decodeEcho(response).headers["authorization"] == "Bearer t0k3n")
    }

    @Test("4xx and 5xx are responses, not errors", arguments: [400, 404, 409, 500])
    func errorStatuses(status: Int) async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let response = try await CurlClient().execute(
            HTTPRequest(url: server.baseURL + "/status/\(status)", retry: .none))
        #expect(response.status == status)
        #expect(String(decoding: response.body, as: UTF8.self) == "status")
    }

    @Test("1,000 requests with 100 in flight all succeed over reused connections")
    func thousandRequests() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let url = server.baseURL + "/echo"
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            var statuses: [Int] = []
            for index in 0..<1000 {
                if index >= 100, let status = try await group.next() { statuses.append(status) }
                group.addTask {
                    let response = try await client.execute(HTTPRequest(url: url + "?i=\(index)", timeout: .seconds(30)))
                    let echo = try decodeEcho(response)
                    return echo.path == "/echo?i=\(index)" ? response.status : -1
                }
            }
            for try await status in group { statuses.append(status) }
            return statuses
        }
        #expect(statuses.count == 1000)
        #expect(statuses.allSatisfy { $0 == 200 })
    }

    @Test("a refused connection is connectFailed with curl's message")
    func refused() async throws {
        let port = try freePort()
        let error = await #expect(throws: HTTPError.self) {
            try await CurlClient().execute(HTTPRequest(url: "http://user:secret@127.0.0.1:\(port)/x", retry: .none))
        }
        #expect(error?.code == .connectFailed)
        #expect(error?.underlyingCode == 7)
        #expect(error?.url == "http://127.0.0.1:\(port)/x")
        #expect(error?.message.isEmpty == false)
        #expect(error?.description.contains("secret") == false)
    }

    @Test("a slow answer past the total timeout is timedOut")
    func timeout() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let start = ContinuousClock.now
        let error = await #expect(throws: HTTPError.self) {
            try await CurlClient().execute(
                HTTPRequest(url: server.baseURL + "/slow?ms=5000", timeout: .milliseconds(300), retry: .none))
        }
        #expect(error?.code == .timedOut)
        #expect(error?.underlyingCode == 28)
        #expect(ContinuousClock.now - start < .seconds(4))  // far below the server's 5 s
    }

    @Test("a body over the limit is tooLarge", arguments: [false, true])
    func tooLarge(chunked: Bool) async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let url = server.baseURL + "/bytes?n=200000&chunked=\(chunked ? 1 : 0)"
        let error = await #expect(throws: HTTPError.self) {
            try await client.execute(HTTPRequest(url: url, maxResponseBytes: 100_000, retry: .none))
        }
        #expect(error?.code == .tooLarge)
        let fits = try await client.execute(HTTPRequest(url: url, maxResponseBytes: 200_000))
        #expect(fits.body.count == 200_000)
    }

    @Test("cancelling the task aborts the transfer and the server sees the connection close")
    func cancellation() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let id = UUID().uuidString
        let task = Task {
            try await client.execute(HTTPRequest(url: server.baseURL + "/hang?id=\(id)", timeout: .seconds(60)))
        }
        let state = { try await String(decoding: client.execute(HTTPRequest(url: server.baseURL + "/state?id=\(id)")).body,
            as: UTF8.self) }
        try await waitUntil("the server to see the request", timeout: .seconds(10)) { try await state() == "open" }
        task.cancel()
        let result = await task.result
        #expect(throws: HTTPError.self) { try result.get() }
        #expect((try? result.get()) == nil)
        if case .failure(let error as HTTPError) = result { #expect(error.code == .cancelled) }
        try await waitUntil("the server to see the connection close", timeout: .seconds(10)) { try await state() == "closed" }
    }

    @Test("503 with Retry-After, then 200: the client waits and retries")
    func retryAfter() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient(random: { 0 })
        let key = UUID().uuidString
        let start = ContinuousClock.now
        let response = try await client.execute(HTTPRequest(
            url: server.baseURL + "/flaky?key=\(key)&fail=2&retry_after=1",
            retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1))))
        let elapsed = ContinuousClock.now - start
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "ok after 3")
        #expect(elapsed >= .seconds(2))  // two Retry-After: 1 waits, where jitter alone would be ~0
        #expect(elapsed < .seconds(20))  // generous: the machine may be loaded
    }

    @Test("retries stop at maxAttempts and return the last response")
    func retryBudget() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient(random: { 0 })
        let key = UUID().uuidString
        let response = try await client.execute(HTTPRequest(
            url: server.baseURL + "/flaky?key=\(key)&fail=10&retry_after=0", retry: RetryPolicy(maxAttempts: 3)))
        #expect(response.status == 503)
        let count = try await client.execute(HTTPRequest(url: server.baseURL + "/count?key=\(key)"))
        #expect(String(decoding: count.body, as: UTF8.self) == "3")
    }

    @Test("POST is not retried unless the caller allows it")
    func nonIdempotent() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient(random: { 0 })
        let key = UUID().uuidString
        let url = server.baseURL + "/flaky?key=\(key)&fail=1&retry_after=0"
        let first = try await client.execute(HTTPRequest(method: "POST", url: url, body: Data("a".utf8)))
        #expect(first.status == 503)
        let key2 = UUID().uuidString
        let allowed = try await client.execute(HTTPRequest(
            method: "POST", url: server.baseURL + "/flaky?key=\(key2)&fail=1&retry_after=0", body: Data("a".utf8),
            retry: RetryPolicy(retryNonIdempotent: true)))
        #expect(allowed.status == 200)
    }

    @Test("a 4xx other than 429 is never retried")
    func noRetryOn4xx() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient(random: { 0 })
        let key = UUID().uuidString
        let response = try await client.execute(HTTPRequest(
            url: server.baseURL + "/status/404?key=\(key)", retry: RetryPolicy(maxAttempts: 5)))
        #expect(response.status == 404)
        let count = try await client.execute(HTTPRequest(url: server.baseURL + "/count?key=\(key)"))
        #expect(String(decoding: count.body, as: UTF8.self) == "1")
    }

    @Test("an invalid request fails before anything is sent")
    func invalid() async throws {
        let client = try CurlClient()
        for request in [
            HTTPRequest(method: "GE T", url: "http://127.0.0.1:1/"),
            HTTPRequest(url: "ftp://127.0.0.1/"),
            HTTPRequest(url: "http://127.0.0.1:1/", headers: [("X-Bad", "a\r\nInjected: 1")]),
            // Every line break and field name the Characters refuse, ASCII or not (HeaderText's two paths).
            HTTPRequest(method: "GÉT", url: "http://127.0.0.1:1/"),
            HTTPRequest(url: "http:127.0.0.1:1/"),
            HTTPRequest(url: "ｈttp://127.0.0.1:1/"),
            HTTPRequest(url: "http://127.0.0.1:1/", headers: [("X-Bad", "a\nb")]),
            HTTPRequest(url: "http://127.0.0.1:1/", headers: [("X-Bad", "a\u{0B}b")]),
            HTTPRequest(url: "http://127.0.0.1:1/", headers: [("X-Bad", "café\u{2028}Injected: 1")]),
            HTTPRequest(url: "http://127.0.0.1:1/", headers: [("X-Bad", "a\u{85}b")]),
            HTTPRequest(url: "http://127.0.0.1:1/", headers: [("X Bad", "v")]),
            HTTPRequest(url: "http://127.0.0.1:1/", headers: [("X-Bad:", "v")]),
            HTTPRequest(url: "http://127.0.0.1:1/", headers: [("X-Bad\t", "v")]),
            HTTPRequest(url: "http://127.0.0.1:1/", headers: [("X-Bäd\u{A0}", "v")]),
            HTTPRequest(url: "http://127.0.0.1:1/", headers: [("", "v")]),
            HTTPRequest(url: "http://127.0.0.1:1/", auth: .bearer("t\u{2029}x")),
        ] {
            let error = await #expect(throws: HTTPError.self) { try await client.execute(request) }
            #expect(error?.code == .invalidRequest, "\(request.method) \(request.url) \(request.headers)")
        }
        // Not ASCII and no line break: tried (nothing listens there), not refused.
        let error = await #expect(throws: HTTPError.self) {
            try await client.execute(HTTPRequest(url: "http://127.0.0.1:1/", headers: [("X-Note", "café ☕ \u{A0}")]))
        }
        #expect(error.map { $0.code != .invalidRequest } == true, "\(String(describing: error))")
    }
}
