import Foundation
import SluiceCore
import SluiceHTTP
@testable import SluiceProviders
import SluiceTestSupport
import Testing

/// `PoolsHealthWorkload` against real loopback servers (Tests/Support/servers/http_test_server.py `/healthz`,
/// whose status and version `/set-health` changes): every member must pass before the canary is ready.
@Suite struct PoolsHealthWorkloadTests {
    let client: CurlClient

    init() throws { client = try CurlClient() }

    func member(status: Int = 200, version: String) async throws -> LoopbackHTTPServer {
        let server = try await LoopbackHTTPServer()
        let set = HTTPRequest(url: server.baseURL + "/set-health?status=\(status)&version=\(version)", timeout: .seconds(5))
        #expect(try await client.execute(set).status == 200)
        return server
    }

    func workload(
        _ servers: [LoopbackHTTPServer], version: VersionProbe? = .header("X-Version"), serving: Bool = false,
        threshold: Int = 3, streaks: HealthStreaks = HealthStreaks(), extra: [String] = []
    ) -> PoolsHealthWorkload {
        PoolsHealthWorkload(
            members: servers.map { "127.0.0.1:\($0.port)" } + extra, version: "v2",
            health: HealthCheck(path: "/healthz", timeout: .seconds(2), version: version, failureThreshold: threshold),
            serving: serving, rollout: "r-1", client: client, streaks: streaks)
    }

    @Test func everyMemberPassingIsReadyWithWhatWasSeen() async throws {
        let (a, b) = (try await member(version: "v2"), try await member(version: "v2"))
        defer { a.stop(); b.stop() }
        let report = try await workload([a, b]).canaryReport()
        #expect(report.status == .ready)
        let evidence = try #require(report.evidence)
        #expect(evidence.checked)
        #expect(
            evidence.summary
                == "GET /healthz answered 200 with header X-Version = v2 on every member of the canary pool "
                + "(127.0.0.1:\(a.port), 127.0.0.1:\(b.port))")
        #expect(
            evidence.data["members"]
                == .array([a, b].map {
                    .object(["member": .string("127.0.0.1:\($0.port)"), "status": .number(200), "version": .string("v2")])
                }))
        #expect(evidence.data["health"] == .object([
            "url": .string("http://{member}/healthz"), "expect": .number(200), "version": .string("header X-Version"),
        ]))
    }

    @Test func aMemberAnswering500KeepsTheCanaryNotReady() async throws {
        let (good, bad) = (try await member(version: "v2"), try await member(status: 500, version: "v2"))
        defer { good.stop(); bad.stop() }
        let report = try await workload([good, bad]).canaryReport()
        #expect(report.status == .progressing(
            "health check /healthz failed on 127.0.0.1:\(bad.port): GET /healthz answered 500, expected 200"))
        #expect(report.evidence == nil)
    }

    @Test func aMemberOnTheWrongVersionKeepsTheCanaryNotReady() async throws {
        let (good, stale) = (try await member(version: "v2"), try await member(version: "v1"))
        defer { good.stop(); stale.stop() }
        let byBody = try await workload([good, stale], version: .jsonPath("version")).canaryReport()
        #expect(byBody.status == .progressing(
            "health check /healthz failed on 127.0.0.1:\(stale.port): body field version is v1, expected v2"))
        let byHeader = try await workload([stale, good]).canaryReport()
        #expect(byHeader.status == .progressing(
            "health check /healthz failed on 127.0.0.1:\(stale.port): header X-Version is v1, expected v2"))
    }

    @Test func aMemberNobodyAnswersOnIsNotReady() async throws {
        let good = try await member(version: "v2")
        defer { good.stop() }
        let silent = "127.0.0.1:\(try freePort())"
        let report = try await workload([good], extra: [silent]).canaryReport()
        guard case .progressing(let reason) = report.status else {
            Issue.record("expected progressing, got \(report.status)")
            return
        }
        #expect(reason.hasPrefix("health check /healthz failed on \(silent): GET /healthz failed: connectFailed"), "\(reason)")
    }

    /// While the canary serves traffic, `failureThreshold` failing observations in a row fail it; a passing one
    /// starts the count again.
    @Test func whileServingFailuresInARowFailTheCanary() async throws {
        let bad = try await member(status: 503, version: "v2")
        defer { bad.stop() }
        let streaks = HealthStreaks()
        let serving = workload([bad], serving: true, threshold: 2, streaks: streaks)
        let why = "127.0.0.1:\(bad.port): GET /healthz answered 503, expected 200"
        #expect(try await serving.canaryReport().status == .progressing(
            "health check /healthz failed 1 of 2 times in a row while the canary serves traffic, on \(why)"))
        #expect(try await serving.canaryReport().status == .failed(
            "health check /healthz failed 2 of 2 times in a row while the canary serves traffic, on \(why)"))

        _ = try await client.execute(HTTPRequest(url: bad.baseURL + "/set-health?status=200", timeout: .seconds(5)))
        #expect(try await serving.canaryReport().status == .ready)
        _ = try await client.execute(HTTPRequest(url: bad.baseURL + "/set-health?status=503", timeout: .seconds(5)))
        #expect(try await serving.canaryReport().status == .progressing(
            "health check /healthz failed 1 of 2 times in a row while the canary serves traffic, on \(why)"))
    }

    /// Before traffic shifts there is no threshold: a failing member only holds the canary back.
    @Test func beforeServingFailuresNeverFailTheCanary() async throws {
        let bad = try await member(status: 500, version: "v2")
        defer { bad.stop() }
        let streaks = HealthStreaks()
        let waiting = workload([bad], threshold: 1, streaks: streaks)
        for _ in 0..<3 {
            guard case .progressing = try await waiting.canaryReport().status else {
                Issue.record("a canary that does not serve yet must stay progressing")
                return
            }
        }
    }

    @Test(arguments: [
        (HTTPResponse(status: 200, headers: [("x-version", " v2 ")]), VersionProbe.header("X-Version"), "v2"),
        (HTTPResponse(status: 200), .header("X-Version"), "the answer has no X-Version header"),
        (HTTPResponse(status: 200, body: Data(#"{"build": {"version": "v2"}}"#.utf8)), .jsonPath("build.version"), "v2"),
        (HTTPResponse(status: 200, body: Data(#"{"items": [{"v": 42}]}"#.utf8)), .jsonPath("items.0.v"), "42"),
        (HTTPResponse(status: 200, body: Data("ok".utf8)), .jsonPath("version"), "the body is not JSON, so it has no version"),
        (HTTPResponse(status: 200, body: Data(#"{"other": 1}"#.utf8)), .jsonPath("version"), "the JSON body has no version"),
        (HTTPResponse(status: 200, body: Data(#"{"version": null}"#.utf8)), .jsonPath("version"), "version in the JSON body is not a string"),
    ])
    func versionIsReadFromTheAnswer(_ response: HTTPResponse, _ probe: VersionProbe, _ expected: String) {
        switch PoolsHealthWorkload.version(in: response, at: probe) {
        case .success(let seen): #expect(seen == expected)
        case .failure(let problem): #expect(problem.message == expected)
        }
    }
}
