import SluiceAPI
import SluiceController
import SluiceCore
import Testing

/// `/metrics` renders the controller's per-tick histograms as Prometheus histograms.
struct TickMetricsRenderingTests {
    @Test func tickLatenessIsACumulativeHistogramWithSumAndCount() async throws {
        try await withAPIServer { url, backend, _ in
            let runtime = RuntimeMetrics()
            // Binary fractions, so the sum prints exactly.
            for value in [0.0009765625, 0.00390625, 0.00390625, 0.75, 12.0] { runtime.histograms.tickLateness.record(value) }
            backend.metrics = runtime
            let text = try await send("GET", url, "/metrics").text
            let lines = Set(text.split(separator: "\n").map(String.init))
            for expected in [
                "# TYPE sluice_tick_lateness_seconds histogram",
                #"sluice_tick_lateness_seconds_bucket{le="0.001"} 1"#,
                #"sluice_tick_lateness_seconds_bucket{le="0.0025"} 1"#,
                #"sluice_tick_lateness_seconds_bucket{le="0.005"} 3"#,
                #"sluice_tick_lateness_seconds_bucket{le="1.0"} 4"#,
                #"sluice_tick_lateness_seconds_bucket{le="10.0"} 4"#,
                #"sluice_tick_lateness_seconds_bucket{le="30.0"} 5"#,
                #"sluice_tick_lateness_seconds_bucket{le="+Inf"} 5"#,
                "sluice_tick_lateness_seconds_sum 12.7587890625",
                "sluice_tick_lateness_seconds_count 5",
                "# TYPE sluice_reconcile_duration_seconds histogram",
                "sluice_reconcile_duration_seconds_count 0",
            ] {
                #expect(lines.contains(expected), "missing \(expected) in:\n\(text)")
            }
        }
    }
}
