import Foundation
import SluiceCore
import SluiceHTTP
import Testing

@testable import SluiceProviders

/// How `PrometheusProvider` reads every shape of answer Prometheus gives (shapes as seen from
/// Prometheus 2.42, docs/development.md), and how it builds its request.
@Suite struct MetricsPrometheusProviderTests {
    static let config = PrometheusConfig(address: "http://127.0.0.1:9090/prom/", timeout: .seconds(3))

    func provider(status: Int = 200, body: String, metrics: ProviderMetrics = .init()) -> PrometheusProvider {
        try! PrometheusProvider(
            name: "prom", config: Self.config, client: ScriptedHTTPClient(status: status, body: body),
            metrics: metrics)
    }

    static let values: [(body: String, expected: MetricReading?)] = [
        (
            #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.7e9,"0.13"]}]}}"#,
            .value(0.13)
        ),
        (#"{"status":"success","data":{"resultType":"scalar","result":[1.7e9,"2"]}}"#, .value(2)),
        (
            #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1,"-0.5"]}]}}"#,
            .value(-0.5)
        ),
        (#"{"status":"success","data":{"resultType":"vector","result":[]}}"#, nil),
        (#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#, nil),
        (#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#, nil),
        (#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"-Inf"]}]}}"#, nil),
    ]

    @Test(arguments: values)
    func readsValueOrNoData(body: String, expected: MetricReading?) async throws {
        let reading = try await provider(body: body).read(query: "q")
        if let expected {
            #expect(reading == expected)
        } else {
            #expect(reading.value == nil)
            guard case .noData(let reason) = reading else {
                Issue.record("expected no data")
                return
            }
            #expect(!reason.isEmpty)
        }
    }

    @Test func moreThanOneSeriesIsAnErrorNamingTheCount() async throws {
        let body = #"""
            {"status":"success","data":{"resultType":"vector","result":[
              {"metric":{"code":"200"},"value":[1,"1"]},{"metric":{"code":"500"},"value":[1,"2"]}]}}
            """#
        let error = try await #require(throws: ProviderError.self) { try await provider(body: body).read(query: "q") }
        #expect(error.code == .badResponse)
        #expect(error.message.contains("the query must return one value but returned 2 series"))
        #expect(error.message.contains(#"{code="500"}"#))
    }

    @Test func rangeVectorIsAnError() async throws {
        let body = #"{"status":"success","data":{"resultType":"matrix","result":[]}}"#
        let error = try await #require(throws: ProviderError.self) { try await provider(body: body).read(query: "q") }
        #expect(error.message.contains("range vector"))
    }

    @Test(arguments: [
        (400, "bad_data", "1:5: parse error: unexpected <by>"),
        (422, "execution", "vector cannot contain metrics with the same labelset"),
    ])
    func rejectedQueryCarriesPrometheusOwnMessage(status: Int, errorType: String, message: String) async throws {
        let body = #"{"status":"error","errorType":"\#(errorType)","error":"\#(message)"}"#
        let metrics = ProviderMetrics()
        let error = try await #require(throws: ProviderError.self) {
            try await provider(status: status, body: body, metrics: metrics).read(query: "q")
        }
        #expect(error.code == .rejected)
        #expect(error.status == status)
        #expect(error.message == "\(errorType): \(message)")
        #expect(error.description.contains(#"prometheus "prom" at http://127.0.0.1:9090/prom/"#))
        #expect(metrics.requests(provider: "prom", outcome: .error) == 1)
    }

    @Test func serverErrorWithoutJSONIsUnavailable() async throws {
        let error = try await #require(throws: ProviderError.self) {
            try await provider(status: 503, body: "Service Unavailable").read(query: "q")
        }
        #expect(error.code == .unavailable)
        #expect(error.isRetryable)
        #expect(error.message == "Service Unavailable")
    }

    @Test func transportFailureIsUnavailable() async throws {
        let client = ScriptedHTTPClient { _ in throw TransportFailure(description: "connection refused") }
        let provider = try PrometheusProvider(name: "prom", config: Self.config, client: client)
        let error = try await #require(throws: ProviderError.self) { try await provider.read(query: "up") }
        #expect(error.code == .unavailable)
        #expect(error.message.contains("connection refused"))
    }

    @Test func timeoutIsUnavailableWithoutTheQueryURL() async throws {
        let client = ScriptedHTTPClient { request in
            throw HTTPError(code: .timedOut, url: request.url, message: "Operation timed out", underlyingCode: 28)
        }
        let provider = try PrometheusProvider(name: "prom", config: Self.config, client: client)
        let error = try await #require(throws: ProviderError.self) { try await provider.read(query: "secret_metric") }
        #expect(error.code == .unavailable)
        #expect(error.message == "no answer (timedOut after 3.0 seconds): Operation timed out")
        #expect(!error.description.contains("secret_metric"))
    }

    @Test func buildsTheInstantQueryRequestWithHeadersTokenAndDeadline() async throws {
        let directory = NSTemporaryDirectory() + "sluice-token-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let tokenFile = directory + "/token"
        try "first-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let client = ScriptedHTTPClient(
            status: 200, body: #"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#)
        let config = PrometheusConfig(
            address: "http://127.0.0.1:9090/prom/", timeout: .seconds(3), headers: ["X-Scope-OrgID": "shop"],
            bearerTokenFile: tokenFile)
        let provider = try PrometheusProvider(name: "prom", config: config, client: client)

        #expect(try await provider.sample(query: #"sum(rate(x{code=~"5.."}[1m])) / 2"#) == 1)
        // A rotated token is used at the next query without a restart.
        try "second-token".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        _ = try await provider.sample(query: "up")

        let requests = client.requests
        try #require(requests.count == 2)
        #expect(requests[0].method == "GET")
        let encoded = "sum%28rate%28x%7Bcode%3D~%225..%22%7D%5B1m%5D%29%29%20%2F%202"
        #expect(requests[0].url == "http://127.0.0.1:9090/prom/api/v1/query?query=" + encoded)
        #expect(requests[0].timeout == .seconds(3))
        #expect(requests[0].retry == .none)
        #expect(requests[0].headers.contains { $0.name == "X-Scope-OrgID" && $0.value == "shop" })
        #expect(requests[0].auth == .bearer("first-token"))
        #expect(requests[1].auth == .bearer("second-token"))
    }

    @Test func unreadableTokenFileIsAnErrorWithoutAnyToken() async throws {
        let config = PrometheusConfig(address: "http://127.0.0.1:9090", bearerTokenFile: "/nonexistent/token")
        let provider = try PrometheusProvider(name: "prom", config: config, client: ScriptedHTTPClient(body: "{}"))
        let error = try await #require(throws: ProviderError.self) { try await provider.read(query: "up") }
        #expect(error.code == .invalidConfiguration)
        #expect(error.message == "cannot read bearerTokenFile /nonexistent/token: no such file")

        let empty = NSTemporaryDirectory() + "sluice-empty-token-\(UUID().uuidString)"
        try "\n".write(toFile: empty, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let blank = try PrometheusProvider(
            name: "prom", config: PrometheusConfig(address: "http://127.0.0.1:9090", bearerTokenFile: empty),
            client: ScriptedHTTPClient(body: "{}"))
        let emptyError = try await #require(throws: ProviderError.self) { try await blank.read(query: "up") }
        #expect(emptyError.message == "bearerTokenFile \(empty) is empty")
    }

    @Test func credentialsInTheAddressNeverReachAMessage() async throws {
        let config = PrometheusConfig(address: "http://user:s3cret@127.0.0.1:9090")
        let provider = try PrometheusProvider(
            name: "prom", config: config, client: ScriptedHTTPClient(status: 500, body: "down"))
        let error = try await #require(throws: ProviderError.self) { try await provider.read(query: "up") }
        #expect(!error.description.contains("s3cret"))
        #expect(error.description.contains("127.0.0.1:9090"))
    }
}
