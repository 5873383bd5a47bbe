import Foundation
import SluiceDemo
import SluiceHTTP
import SluiceTestSupport
import Testing

/// The demo load's retry rule: a GET that got no answer because the connection was refused or closed
/// unanswered is sent again (at most `connectionRetries` times); a timeout and every status are not.
@Suite struct LoadGeneratorTests {
    static let request = HTTPRequest(url: "http://127.0.0.1:1/", retry: .none)

    @Test(arguments: [
        // (what the client does, attempt by attempt; the sample's status, retries, failure; sends)
        (["connectFailed", "200"], 200, 1, nil, 2),
        (["protocolError", "protocolError", "200"], 200, 2, nil, 3),
        (["protocolError", "connectFailed", "protocolError", "200"], 0, 2, "protocolError", 3),
        (["timedOut", "200"], 0, 0, "timedOut", 1),
        (["tlsFailed", "200"], 0, 0, "tlsFailed", 1),
        (["500", "200"], 500, 0, nil, 1),
        (["502", "200"], 502, 0, nil, 1),
    ] as [([String], Int, Int, String?, Int)])
    func retriesOnlyWhatNeverReachedAnAnswer(
        script: [String], status: Int, retries: Int, failure: String?, sends: Int
    ) async {
        let client = ScriptedClient(script)
        let sample = await LoadGenerator.send(Self.request, client: client, retries: 2)
        #expect(sample.status == status && sample.retries == retries && sample.failure == failure, "\(sample)")
        #expect(client.sent == sends)
        #expect(sample.version == (status == 0 ? nil : "v9"))
    }

    @Test func noRetriesWhenTurnedOff() async {
        let client = ScriptedClient(["connectFailed", "200"])
        let sample = await LoadGenerator.send(Self.request, client: client, retries: 0)
        #expect(sample.status == 0 && sample.retries == 0 && sample.failure == "connectFailed" && client.sent == 1)
    }

    /// A real refused connection (nothing listens on the port) through libcurl: sent three times, then logged
    /// as unanswered with its cause.
    @Test func aRefusedConnectionIsTriedThreeTimesThenLoggedUnanswered() async throws {
        let port = try freePort()
        let request = HTTPRequest(url: "http://127.0.0.1:\(port)/", timeout: .seconds(2), retry: .none)
        let sample = await LoadGenerator.send(request, client: try CurlClient(), retries: 2)
        #expect(sample.status == 0 && sample.retries == 2 && sample.failure == "connectFailed", "\(sample)")
    }

    @Test func logLinesRoundTripAndOlderLinesStillParse() throws {
        for sample in [
            LoadSample(milliseconds: 1_700_000_000_123, version: "v2", status: 200),
            LoadSample(milliseconds: 1_700_000_000_124, version: "v3", status: 500, retries: 1),
            LoadSample(milliseconds: 1_700_000_000_125, version: nil, status: 0, retries: 2, failure: "protocolError"),
        ] {
            let line = sample.line
            #expect(line.hasSuffix("\n"))
            #expect(LoadSample(line: Substring(line.dropLast())) == sample, "\(line)")
        }
        let older = LoadSample(milliseconds: 1_700_000_000_126, version: "v1", status: 200)
        #expect(LoadSample(line: "1700000000126 v1 200") == older)
        for bad in ["", "1 v1", "x v1 200", "1 v1 200 -1", "1 v1 200 z", "1 v1 200 0 a b"] {
            #expect(LoadSample(line: Substring(bad)) == nil, "\(bad)")
        }
        let log = TrafficLog(samples: [
            LoadSample(milliseconds: 1, version: "v1", status: 200, retries: 1),
            LoadSample(milliseconds: 2, version: nil, status: 0, retries: 2, failure: "connectFailed"),
            LoadSample(milliseconds: 3, version: "v3", status: 500),
        ])
        #expect(log.retried == 1 && log.failures == 2)
    }
}

/// An `HTTPClient` that plays `script`, one entry a send: a status answers with `X-Demo-Version: v9`, anything
/// else throws the `HTTPError` of that code.
final class ScriptedClient: HTTPClient, @unchecked Sendable {
    private let lock = NSLock()
    private var script: [String]
    private var count = 0

    init(_ script: [String]) { self.script = script }

    var sent: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        let step: String = lock.withLock {
            count += 1
            return script.isEmpty ? "200" : script.removeFirst()
        }
        if let status = Int(step) { return HTTPResponse(status: status, headers: [(DemoApp.versionHeader, "v9")]) }
        guard let code = HTTPError.Code(rawValue: step) else { fatalError("not an HTTPError.Code: \(step)") }
        throw HTTPError(code: code, url: request.url, message: "scripted")
    }
}
