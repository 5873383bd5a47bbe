import Foundation
import SluiceCore
import SluiceHTTP
import SluiceProviders
import SluiceTestSupport
import Testing

/// `WebProvider` against real servers: Prometheus' own JSON API, the exporter, a server too slow to
/// answer in time, and a port where nothing listens.
@Suite struct MetricsWebIntegrationTests {
    @Test func readsANumberFromPrometheusJSONAPI() async throws {
        let lab = try await MetricsLab.start()
        defer { lab.stop() }
        let config = WebConfig(url: lab.prometheus.address + "/api/v1/query?query={{query}}", jsonPath: "data.result.1")
        let web = try WebProvider(name: "web", config: config, client: lab.client)
        #expect(try await web.sample(query: #"scalar(up{job="exporter"})"#) == 1)
    }

    @Test func readsTheExporterBehaviour() async throws {
        let exporter = try await TestExporter.start()
        defer { exporter.stop() }
        let client = try CurlClient()
        let web = try WebProvider(
            name: "web", config: WebConfig(url: exporter.url + "/control", jsonPath: "latency_ms"), client: client)
        #expect(try await web.sample(query: "") == 0)
    }

    @Test func slowServerIsNoDataAfterTheTimeout() async throws {
        let exporter = try await TestExporter.start()
        defer { exporter.stop() }
        let client = try CurlClient()
        let control = HTTPRequest(
            method: "POST", url: exporter.url + "/control", body: Data(#"{"latency_ms": 3000}"#.utf8),
            timeout: .seconds(5))
        #expect(try await client.execute(control).status == 200)

        let metrics = ProviderMetrics()
        let web = try WebProvider(
            name: "web", config: WebConfig(url: exporter.url + "/", jsonPath: "code", timeout: .milliseconds(300)),
            client: client, metrics: metrics)
        let result = await CheckRunner(providers: ["web": web])
            .run(Check(name: "slow", provider: "web", query: "", max: 500), query: "")
        #expect(result.verdict == .noData)
        #expect(result.reason?.contains("no answer (timedOut after 0.3 seconds)") == true, "\(result)")
        #expect(result.latencySeconds >= 0.3 && result.latencySeconds < 2, "\(result)")
        #expect(metrics.requests(provider: "web", outcome: .error) == 1)
    }

    @Test func nothingListeningIsNoData() async throws {
        let port = try freePort()
        let web = try WebProvider(
            name: "web", config: WebConfig(url: "http://127.0.0.1:\(port)/", jsonPath: "v", timeout: .seconds(2)),
            client: try CurlClient())
        let error = try await #require(throws: ProviderError.self) { try await web.read(query: "") }
        #expect(error.code == .unavailable)
        #expect(error.message.hasPrefix("no answer (connectFailed)"), "\(error)")
        #expect(error.description.contains("127.0.0.1:\(port)"))
    }
}
