import Foundation
import SluiceCore
import SluiceHTTP
import SluiceProviders
import SluiceTestSupport
import Testing

/// The checks of strategies/checkout.yaml against a real Prometheus scraping the test exporter every
/// second, with real requests flowing; windows shortened from `[1m]` to `[5s]`.
@Suite struct MetricsPrometheusIntegrationTests {
    /// How the exporter behaves while a check must pass, then while it must breach, and the range the
    /// breaching value must settle in.
    struct Scenario: Sendable, CustomTestStringConvertible {
        var check: String
        var healthy: (errorRate: Double, latencyMs: Double)
        var healthyValue: ClosedRange<Double>
        var unhealthy: (errorRate: Double, latencyMs: Double)
        var settled: @Sendable (Double) -> Bool
        var unhealthyValue: ClosedRange<Double>
        var testDescription: String { check }
    }

    static let scenarios = [
        Scenario(
            check: "error-rate", healthy: (0, 20), healthyValue: 0...0, unhealthy: (0.2, 20),
            settled: { $0 >= 0.15 }, unhealthyValue: 0.15...0.25),
        // 20 ms lands in the (0.01, 0.025] bucket (a slow 1 % under load in the next), 300 ms in (0.25, 0.5].
        Scenario(
            check: "p99-latency-seconds", healthy: (0, 20), healthyValue: 0.01...0.1, unhealthy: (0, 300),
            settled: { $0 >= 0.25 }, unhealthyValue: 0.25...0.5),
        Scenario(
            check: "availability", healthy: (0, 20), healthyValue: 1...1, unhealthy: (0.05, 20),
            settled: { $0 <= 0.96 }, unhealthyValue: 0.94...0.96),
    ]

    @Test(arguments: scenarios)
    func checkPassesWhenHealthyAndBreachesWhenNot(scenario: Scenario) async throws {
        let check = try CheckoutChecks.check(named: scenario.check)
        let query = try CheckoutChecks.shortWindowQuery(check)
        let lab = try await MetricsLab.start(latencyMs: scenario.healthy.latencyMs)
        defer { lab.stop() }
        try await lab.control(errorRate: scenario.healthy.errorRate)

        try await lab.withTraffic(concurrency: 4) {
            let pass = try await lab.waitForResult(check, query: query, "\(check.name) to pass") { $0.verdict == .pass }
            #expect(scenario.healthyValue.contains(try #require(pass.value)), "\(pass)")

            try await lab.control(errorRate: scenario.unhealthy.errorRate, latencyMs: scenario.unhealthy.latencyMs)
            let breach = try await lab.waitForResult(check, query: query, "\(check.name) to breach") {
                $0.verdict == .breach && scenario.settled($0.value ?? .nan)
            }
            #expect(scenario.unhealthyValue.contains(try #require(breach.value)), "\(breach)")
        }
        #expect(lab.metrics.requests(provider: "prom", outcome: .value) >= 2)
        #expect(try #require(lab.metrics.latency(provider: "prom")).last < .seconds(2))
    }

    @Test func missingSeriesAndNoTrafficAreNoDataNeverAPass() async throws {
        let lab = try await MetricsLab.start()
        defer { lab.stop() }
        let check = try CheckoutChecks.check(named: "error-rate")
        let query = try CheckoutChecks.shortWindowQuery(check)

        // A series nobody exports: an empty vector.
        let missing = await CheckRunner(providers: ["prom": lab.provider])
            .run(check, query: query.replacingOccurrences(of: #"app="checkout""#, with: #"app="nobody""#))
        #expect(missing.verdict == .noData)
        #expect(missing.reason?.contains("empty result") == true, "\(missing)")

        // The counters exist but nothing was served in the window: 0/0 is NaN.
        let idle = try await lab.waitForResult(check, query: query, "0/0 to show as NaN") {
            $0.reason?.contains("NaN") == true
        }
        #expect(idle.verdict == .noData)
        #expect(idle.value == nil)
        #expect(lab.metrics.requests(provider: "prom", outcome: .noData) >= 2)
    }

    @Test(arguments: [
        ("sum(rate(http_requests_total[5s]) by", "bad_data: invalid parameter \"query\": 1:35: parse error", 400),
        (
            #"label_replace(http_requests_total, "code", "x", "", "")"#,
            "execution: vector cannot contain metrics with the same labelset", 422
        ),
    ])
    func rejectedQueryIsNoDataWithPrometheusOwnMessage(query: String, message: String, status: Int) async throws {
        let lab = try await MetricsLab.start()
        defer { lab.stop() }
        let errorsBefore = lab.metrics.requests(provider: "prom", outcome: .error)  // 503s while Prometheus starts
        let error = try await #require(throws: ProviderError.self) { try await lab.provider.read(query: query) }
        #expect(error.code == .rejected)
        #expect(error.status == status)
        #expect(error.message.hasPrefix(message), "\(error)")

        let result = await CheckRunner(providers: ["prom": lab.provider])
            .run(Check(name: "bad", provider: "prom", query: query, max: 1), query: query)
        #expect(result.verdict == .noData)
        #expect(result.reason?.contains(message) == true)
        #expect(lab.metrics.requests(provider: "prom", outcome: .error) == errorsBefore + 2)
    }

    @Test func moreThanOneSeriesIsAnErrorNamingTheCount() async throws {
        let lab = try await MetricsLab.start()
        defer { lab.stop() }
        let error = try await #require(throws: ProviderError.self) {
            try await lab.provider.read(query: #"http_requests_total{app="checkout"}"#)
        }
        #expect(error.message.contains("the query must return one value but returned 2 series"), "\(error)")
        #expect(error.message.contains(#"code="500""#))
    }

    @Test func prometheusStoppedInTheMiddleIsNoData() async throws {
        let lab = try await MetricsLab.start()
        defer { lab.stop() }
        let check = Check(name: "up", provider: "prom", query: #"up{job="exporter"}"#, min: 1)
        let runner = CheckRunner(providers: ["prom": lab.provider])
        #expect(await runner.run(check, query: check.query).verdict == .pass)

        lab.prometheus.stop()
        let error = try await #require(throws: ProviderError.self) { try await lab.provider.read(query: check.query) }
        #expect(error.code == .unavailable)
        let result = await runner.run(check, query: check.query)
        #expect(result.verdict == .noData)
        #expect(result.reason?.contains("no answer") == true, "\(result)")
        #expect(result.latencySeconds < 2)
    }
}
