import Foundation
import SluiceAPI
import SluiceCore
import Testing

/// `/metrics` in Prometheus text: the series of the issue, with their labels.
struct MetricsTests {
    @Test
    func metricsShowPhasesWeightsChecksAndControllerCounters() async throws {
        try await withAPIServer { url, backend, _ in
            let key = StrategyKey(namespace: "shop", name: "checkout")
            var rollout = try await backend.startRollout(key, version: "v2", actor: "ci", supersede: false)
            rollout.checks["error-rate"] = CheckState(
                lastSample: Sample(check: "error-rate", time: FakeBackend.epoch, value: 0.25, verdict: .pass))
            backend.replace(rollout)
            var runtime = RuntimeMetrics()
            runtime.histograms.reconcileDuration.record(0.003)
            runtime.histograms.reconcileDuration.record(0.2)
            runtime.providerRequests[.init(provider: "prometheus", outcome: "success")] = 7
            runtime.providerRequests[.init(provider: "caddy", outcome: "error")] = 1
            runtime.rollbacks[.init(strategy: "shop/checkout", trigger: "automatic")] = 2
            backend.metrics = runtime
            _ = try await send("GET", url, "/v1/strategies")  // one refused request
            let text = try await send("GET", url, "/metrics").text
            let lines = Set(text.split(separator: "\n").map(String.init))
            for expected in [
                #"sluice_rollouts{phase="Progressing"} 1.0"#,
                #"sluice_rollouts{phase="Succeeded"} 0.0"#,
                #"sluice_canary_weight_wanted{strategy="shop/checkout"} 5.0"#,
                #"sluice_reconcile_duration_seconds_bucket{le="0.005"} 1"#,
                #"sluice_reconcile_duration_seconds_bucket{le="0.25"} 2"#,
                #"sluice_reconcile_duration_seconds_bucket{le="+Inf"} 2"#,
                "sluice_reconcile_duration_seconds_count 2",
                #"sluice_provider_requests_total{provider="prometheus",outcome="success"} 7"#,
                #"sluice_provider_requests_total{provider="caddy",outcome="error"} 1"#,
                #"sluice_rollbacks_total{strategy="shop/checkout",trigger="automatic"} 2"#,
                #"sluice_api_auth_failures_total{reason="missing"} 1"#,
                "# TYPE sluice_check_value gauge",
                #"sluice_check_value{strategy="shop/checkout",check="error-rate"} 0.25"#,
            ] {
                #expect(lines.contains(expected), "missing \(expected) in:\n\(text)")
            }
            // The fake's rollout was never read back from a router: no observed weight rather than the wanted one.
            #expect(!text.contains(#"sluice_canary_weight{strategy="shop/checkout"}"#), "\(text)")
        }
    }

    /// Sluice's own counters are there at 0 before anything happened, for every series an applied strategy can make:
    /// `increase()` and `rate()` see no rise in a series whose first sample is 1, so the first provider error, the
    /// first rollback and the first failed webhook would otherwise pass the alert rules by.
    @Test
    func countersAreExportedAtZeroBeforeTheirFirstIncrement() async throws {
        try await withAPIServer { url, backend, _ in
            // The seeded shop/checkout: its check queries provider "prom", its traffic goes through Caddy.
            var lines = Set(try await send("GET", url, "/metrics").text.split(separator: "\n").map(String.init))
            for expected in [
                #"sluice_provider_requests_total{provider="prom",outcome="value"} 0"#,
                #"sluice_provider_requests_total{provider="prom",outcome="no_data"} 0"#,
                #"sluice_provider_requests_total{provider="prom",outcome="error"} 0"#,
                #"sluice_provider_requests_total{provider="caddy",outcome="success"} 0"#,
                #"sluice_provider_requests_total{provider="caddy",outcome="error"} 0"#,
                #"sluice_rollbacks_total{strategy="shop/checkout",trigger="manual"} 0"#,
                #"sluice_rollbacks_total{strategy="shop/checkout",trigger="check_breached"} 0"#,
                #"sluice_rollbacks_total{strategy="shop/checkout",trigger="no_data"} 0"#,
                "# TYPE sluice_webhook_deliveries_total counter",
                #"sluice_webhook_deliveries_total{outcome="delivered"} 0"#,
                #"sluice_webhook_deliveries_total{outcome="failed"} 0"#,
            ] {
                #expect(lines.contains(expected), "missing \(expected)")
            }
            // Counted values replace the zeros, once each.
            backend.metrics.providerRequests[.init(provider: "prom", outcome: "error")] = 2
            backend.metrics.rollbacks[.init(strategy: "shop/checkout", trigger: "manual")] = 1
            backend.metrics.webhooksDelivered = 5
            backend.metrics.webhooksFailed = 3
            let text = try await send("GET", url, "/metrics").text
            lines = Set(text.split(separator: "\n").map(String.init))
            for expected in [
                #"sluice_provider_requests_total{provider="prom",outcome="error"} 2"#,
                #"sluice_rollbacks_total{strategy="shop/checkout",trigger="manual"} 1"#,
                #"sluice_webhook_deliveries_total{outcome="delivered"} 5"#,
                #"sluice_webhook_deliveries_total{outcome="failed"} 3"#,
            ] {
                #expect(lines.contains(expected), "missing \(expected) in:\n\(text)")
            }
            #expect(!lines.contains(#"sluice_rollbacks_total{strategy="shop/checkout",trigger="manual"} 0"#))
        }
    }
}
