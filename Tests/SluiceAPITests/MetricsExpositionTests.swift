import Foundation
import SluiceTestSupport
import Testing

/// `/metrics` of a running `sluice serve`, read by Prometheus' own parser: `promtool check metrics` (Debian's
/// prometheus package) parses the whole exposition and lints it (HELP on every family, `_total` on counters, ...).
struct MetricsExpositionTests {
    /// Every family a single-replica server writes once a rollout has been ticked (`sluice_shards_owned` is
    /// PostgreSQL's only).
    static let families = [
        "sluice_ready", "sluice_rollouts", "sluice_canary_weight", "sluice_canary_weight_wanted", "sluice_check_value",
        "sluice_rollout_overdue_intervals", "sluice_reconcile_duration_seconds", "sluice_tick_lateness_seconds",
        "sluice_store_errors_total", "sluice_shards_unowned", "sluice_provider_requests_total", "sluice_rollbacks_total",
        "sluice_webhook_deliveries_total", "sluice_api_auth_failures_total", "sluice_api_connections",
        "sluice_api_tokens_reload_failures_total", "sluice_api_tokens_file_stale",
    ]

    @Test
    func aRunningServersWholeExpositionPassesPromtool() async throws {
        let (caddy, server) = try await ServeProcess.rolloutBehindCaddy(version: "v2")
        defer {
            server.stop()
            caddy.stop()
        }
        var text = ""
        try await waitUntil("a tick to sample the check and set the weight", timeout: .seconds(30)) {
            text = try await run("/usr/bin/curl", ["-sf", server.url + "/metrics"]).stdout
            let samples = ExposedSamples(text)
            return samples.values.keys.contains { $0.hasPrefix("sluice_check_value{") }
                && (samples["sluice_reconcile_duration_seconds_count"] ?? 0) >= 1
                && samples.values.keys.contains { $0.hasPrefix("sluice_canary_weight{") }
        }
        let file = server.directory + "/metrics.txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let checked = try await run(
            "/bin/sh", ["-c", "\(PrometheusServer.promtool) check metrics < \"$0\"", file],
            installHint: "apt-get install -y prometheus (promtool)")
        #expect(checked.status == 0 && checked.stdout.isEmpty && checked.stderr.isEmpty,
            "promtool check metrics (exit \(checked.status)): \(checked.stdout)\(checked.stderr)\n\(text)")

        let typed = Set(text.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(separator: " ")
            return words.count == 4 && words[0] == "#" && words[1] == "TYPE" ? String(words[2]) : nil
        })
        #expect(typed == Set(Self.families), "families: \(typed.sorted())")
    }
}
