import Foundation
import SluiceCore
import SluiceHTTP
import Testing

@testable import SluiceProviders

/// The registry makes the provider a strategy names, and the runner turns readings into verdicts.
@Suite struct MetricsRegistryTests {
    static let scalarOne = #"{"status":"success","data":{"resultType":"scalar","result":[1,"0.5"]}}"#

    @Test func makesOneProviderPerEntryByKind() throws {
        let registry = MetricProviderRegistry(client: ScriptedHTTPClient(body: "{}"))
        let analysis = Analysis(providers: [
            "prom": .prometheus(PrometheusConfig(address: "http://127.0.0.1:9090")),
            "stats": .web(WebConfig(url: "http://127.0.0.1:1/", jsonPath: "v")),
        ])
        let providers = try registry.makeProviders(for: analysis)
        #expect(providers["prom"] is PrometheusProvider)
        #expect(providers["stats"] is WebProvider)
    }

    @Test(arguments: [
        (Check(name: "low", provider: "prom", query: "q", max: 0.6), SampleVerdict.pass),
        (Check(name: "high", provider: "prom", query: "q", max: 0.4), .breach),
        (Check(name: "floor", provider: "prom", query: "q", min: 0.9), .breach),
        (Check(name: "band", provider: "prom", query: "q", max: 1, min: 0.1), .pass),
    ])
    func runnerGivesTheVerdictOfTheThresholds(check: Check, verdict: SampleVerdict) async throws {
        let metrics = ProviderMetrics()
        let registry = MetricProviderRegistry(client: ScriptedHTTPClient(body: Self.scalarOne), metrics: metrics)
        let provider = try registry.makeProvider(name: "prom", config: .prometheus(.init(address: "http://x:9090")))
        let result = await CheckRunner(providers: ["prom": provider]).run(check, query: "q")
        #expect(result.value == 0.5)
        #expect(result.verdict == verdict)
        #expect(result.reason == nil)
        #expect(metrics.requests(provider: "prom", outcome: .value) == 1)
        #expect(try #require(metrics.latency(provider: "prom")).count == 1)
    }

    @Test func runnerTurnsErrorsAndMissingProvidersIntoNoDataWithTheMessage() async throws {
        let client = ScriptedHTTPClient(
            status: 400, body: #"{"status":"error","errorType":"bad_data","error":"parse error"}"#)
        let runner = CheckRunner(providers: [
            "prom": try PrometheusProvider(name: "prom", config: .init(address: "http://x:9090"), client: client)
        ])
        let results = await runner.run([
            (Check(name: "bad", provider: "prom", query: "sum(", max: 1), "sum("),
            (Check(name: "orphan", provider: "nope", query: "q", max: 1), "q"),
        ])
        #expect(results.map(\.check) == ["bad", "orphan"])
        #expect(results.allSatisfy { $0.verdict == .noData && $0.value == nil })
        #expect(results[0].reason?.contains("bad_data: parse error (HTTP 400)") == true)
        #expect(results[1].reason?.contains("no provider of this name") == true)
    }

    @Test(arguments: [
        (Check(name: "a", provider: "p", query: "q", max: 0.01), "<= 0.01"),
        (Check(name: "a", provider: "p", query: "q", min: 0.999), ">= 0.999"),
        (Check(name: "a", provider: "p", query: "q", max: 0.5, min: 0.1), ">= 0.1 and <= 0.5"),
    ])
    func thresholdInWords(check: Check, words: String) async {
        let result = await CheckRunner(providers: [:]).run(check, query: "q")
        #expect(result.threshold == words)
    }
}
