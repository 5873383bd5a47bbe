import Foundation
import SluiceAPI
import SluiceCore
import Testing

/// The series the alert rules need that /metrics did not have: readiness, store errors, how overdue each
/// strategy's active rollout is.
struct AlertMetricsTests {
    static func lines(_ url: URL) async throws -> Set<String> {
        Set(try await send("GET", url, "/metrics").text.split(separator: "\n").map(String.init))
    }

    @Test
    func readyGaugeSaysWhatReadyzSays() async throws {
        try await withAPIServer { url, backend, _ in
            backend.ready = false
            #expect(try await send("GET", url, "/readyz").status == 503)
            #expect(try await Self.lines(url).contains("sluice_ready 0.0"))
            backend.ready = true
            #expect(try await send("GET", url, "/readyz").status == 200)
            let lines = try await Self.lines(url)
            #expect(lines.contains("sluice_ready 1.0"))
            #expect(lines.contains("# TYPE sluice_ready gauge"))
        }
    }

    @Test
    func storeErrorsAndOverdueIntervalsPerStrategy() async throws {
        try await withAPIServer { url, backend, _ in
            backend.metrics.storeErrors = 4
            let key = StrategyKey(namespace: "shop", name: "checkout")
            var rollout = try await backend.startRollout(key, version: "v2", actor: "ci", supersede: false)
            // The stage's weight was asked for 35 s ago (the server's clock is FakeBackend.epoch), interval 10 s.
            rollout.canaryRequestedAt = FakeBackend.epoch + .seconds(-35)
            backend.replace(rollout)
            let lines = try await Self.lines(url)
            #expect(lines.contains("# TYPE sluice_store_errors_total counter"))
            #expect(lines.contains("sluice_store_errors_total 4"))
            #expect(lines.contains("# TYPE sluice_rollout_overdue_intervals gauge"))
            #expect(lines.contains(#"sluice_rollout_overdue_intervals{strategy="shop/checkout",phase="Progressing"} 3.0"#))

            rollout.phase = .paused  // a pause waits for a human: no series
            backend.replace(rollout)
            #expect(!(try await Self.lines(url)).contains { $0.hasPrefix("sluice_rollout_overdue_intervals{") })
        }
    }
}
