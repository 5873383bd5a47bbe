import Foundation
@testable import SluiceHTTP
import SluiceTestSupport
import Testing

@Suite("Admission of requests per origin")
struct AdmissionGateTests {
    @Test("the origin is scheme, host and port, lower-cased, without user info or path")
    func origins() {
        #expect(AdmissionGate.origin(of: "http://127.0.0.1:9090/api/v1/query?query=up") == "http://127.0.0.1:9090")
        #expect(AdmissionGate.origin(of: "HTTPS://User:pw@Example.com:8443#x") == "https://example.com:8443")
        #expect(AdmissionGate.origin(of: "https://example.com?a=1") == "https://example.com")
        #expect(AdmissionGate.origin(of: "http://[::1]:80/x") == "http://[::1]:80")
        // ASCII URLs are read on their bytes, others by Character: both give the Characters' answer.
        for url in [
            "http://127.0.0.1:9090/api/v1/query?query=up", "HTTPS://User:pw@Example.com:8443#x", "http://a@b@C:1/p",
            "http://@host", "http://host@", "https://example.com?a=1", "http://[::1]:80/x", "no scheme/Here",
            "HTTP:/one-slash", "://x", "http://", "mailto:X@Y", "http://a\r\n/b", "http://Bücher.example/x",
            "http://ü@Ä:1/é", "HTTP://ÉXAMPLE.com", "ｈttp://A/b", "http://e\u{301}/x", "http://a/\u{301}b",
        ] {
            #expect(AdmissionGate.origin(of: url) == AdmissionGate.characterOrigin(of: url), "\(url.debugDescription)")
        }
    }

    @Test("beyond the limit, requests wait and are admitted in arrival order")
    func fifo() async throws {
        let admission = AdmissionGate(limit: 2)
        try await admission.acquire("a")
        try await admission.acquire("a")
        let order = OrderLog()
        var waiters: [Task<Void, any Error>] = []
        for index in 0..<3 {
            waiters.append(Task {
                try await admission.acquire("a")
                order.append(index)
            })
            // Each waiter is queued before the next one starts, so arrival order is known.
            try await waitUntil("waiter \(index) to queue") { admission.load("a").queued == index + 1 }
        }
        // Another origin is not held up by the full one.
        try await admission.acquire("b")
        #expect(admission.load("b") == (1, 0))
        #expect(admission.load("a") == (2, 3))

        // One release at a time: two waiters admitted together run on two threads and may log in either order,
        // which says nothing about the order the gate admitted them in.
        admission.release("a")
        try await waitUntil("one waiter admitted") { order.values == [0] }
        admission.release("a")
        try await waitUntil("the second waiter admitted") { order.values == [0, 1] }
        admission.release("a")
        for waiter in waiters { try await waiter.value }
        #expect(order.values == [0, 1, 2])
        #expect(admission.load("a") == (2, 0))
        admission.release("a")
        admission.release("a")
        admission.release("b")
        #expect(admission.load("a") == (0, 0))
        #expect(admission.load("b") == (0, 0))
    }

    @Test("a waiter that is cancelled leaves the queue and takes no slot")
    func cancelled() async throws {
        let admission = AdmissionGate(limit: 1)
        try await admission.acquire("a")
        let first = Task { try await admission.acquire("a") }
        try await waitUntil("the first waiter to queue") { admission.load("a").queued == 1 }
        let second = Task { try await admission.acquire("a") }
        try await waitUntil("the second waiter to queue") { admission.load("a").queued == 2 }

        first.cancel()
        await #expect(throws: CancellationError.self) { try await first.value }
        #expect(admission.load("a") == (1, 1))
        admission.release("a")  // passes over the cancelled waiter to the second
        try await second.value
        #expect(admission.load("a") == (1, 0))
        admission.release("a")
        #expect(admission.load("a") == (0, 0))
    }

    @Test("a task cancelled before it waits does not wait")
    func cancelledEarly() async throws {
        let admission = AdmissionGate(limit: 1)
        try await admission.acquire("a")
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await admission.acquire("a")
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        admission.release("a")
        #expect(admission.load("a") == (0, 0))
    }

    @Test("only the per-origin limit reaches a server; other origins go on; cancelled waiters give every slot back")
    func againstAServer() async throws {
        let hanging = try await LoopbackHTTPServer()
        let other = try await LoopbackHTTPServer()
        defer {
            hanging.stop()
            other.stop()
        }
        let client = try CurlClient()
        let observer = try CurlClient()
        @Sendable func openAtServer() async throws -> Int {
            let answer = try await observer.execute(HTTPRequest(url: hanging.baseURL + "/open"))
            return Int(String(decoding: answer.body, as: UTF8.self)) ?? -1
        }
        let limit = client.admission.limit
        let requests = (0..<(limit + 72)).map { index in
            Task { try await client.execute(HTTPRequest(url: hanging.baseURL + "/hang?id=h\(index)", timeout: .seconds(25))) }
        }
        defer { requests.forEach { $0.cancel() } }
        let origin = AdmissionGate.origin(of: hanging.baseURL)
        try await waitUntil("\(limit) requests open at the server and 72 waiting", timeout: .seconds(20)) {
            try await openAtServer() == limit && client.admission.load(origin) == (limit, 72)
        }
        let answer = try await client.execute(HTTPRequest(url: other.baseURL + "/echo"))
        #expect(answer.status == 200)
        #expect(try await openAtServer() == limit)

        for request in requests { request.cancel() }
        for request in requests {
            let error = await #expect(throws: HTTPError.self) { try await request.value }
            #expect(error?.code == .cancelled)
        }
        #expect(client.admission.load(origin) == (0, 0))
        try await waitUntil("the server to see every request go away", timeout: .seconds(20)) {
            try await openAtServer() == 0
        }
        // Every slot came back: a burst of twice the limit goes through.
        let burst = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<(2 * limit) {
                group.addTask { try await client.execute(HTTPRequest(url: hanging.baseURL + "/echo")).status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(burst.count == 2 * limit && burst.allSatisfy { $0 == 200 })
        #expect(client.admission.load(origin) == (0, 0))
    }
}

/// Indices in the order they were appended, from any task.
private final class OrderLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [Int] = []

    func append(_ value: Int) { lock.withLock { stored.append(value) } }
    var values: [Int] { lock.withLock { stored } }
}
