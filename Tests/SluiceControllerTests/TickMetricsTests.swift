import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

/// `sluice_tick_lateness_seconds` and `sluice_reconcile_duration_seconds` are observed on every tick, on the
/// controller's clock (a manual one here, so every figure is exact).
@Suite struct TickMetricsTests {
    /// Runs `body` with a scenario whose rollout has started (its first tick done), and stops it after.
    func withStartedRollout(_ body: (Scenario) async throws -> Void) async throws {
        let scenario = try await Scenario()
        do {
            _ = try await scenario.start()
            try await body(scenario)
        } catch {
            await scenario.stop()
            throw error
        }
        await scenario.stop()
    }

    /// Lets the tick due at +10 s start, holds its observation (the check hangs) while the controller's clock
    /// moves `hang` further, then lets it finish and settle.
    func hangTheTickDueAtTenSeconds(_ scenario: Scenario, for hang: Duration) async throws {
        let world = scenario.world()
        world.metrics.gate.close()
        scenario.clock.advance(by: .seconds(10))
        try await waitUntil("the check to hang", interval: .milliseconds(2)) { world.metrics.gate.waiters == 1 }
        scenario.clock.advance(by: hang)
        world.metrics.gate.openGate()
        try await scenario.settle()
    }

    @Test func everyTickObservesHowLateItsObservationStartedAgainstItsSchedule() async throws {
        try await withStartedRollout { scenario in
            let first = ExposedSamples(scenario.controller.histograms.exposition())
            #expect(first["sluice_tick_lateness_seconds_count"] == 1, "the first tick runs as soon as the rollout starts")
            #expect(first["sluice_tick_lateness_seconds_sum"] == 0)

            scenario.clock.advance(by: .seconds(13))  // due at +10 s, observed at +13 s: 3 s late
            try await scenario.settle()
            scenario.clock.advance(by: .seconds(10))  // due at +23 s (that tick's start + 10 s): on time
            try await scenario.settle()

            let lateness = ExposedSamples(scenario.controller.histograms.exposition())
            #expect(lateness["sluice_tick_lateness_seconds_count"] == 3)
            #expect(lateness["sluice_tick_lateness_seconds_sum"] == 3)
            #expect(lateness[#"sluice_tick_lateness_seconds_bucket{le="0.001"}"#] == 2, "two ticks on time, in the first bucket (≤ 1 ms)")
            let upToFive = try #require(lateness[#"sluice_tick_lateness_seconds_bucket{le="5.0"}"#])
            let upToTwoAndAHalf = try #require(lateness[#"sluice_tick_lateness_seconds_bucket{le="2.5"}"#])
            #expect(upToFive - upToTwoAndAHalf == 1, "the late tick in (2.5 s, 5 s]: \(lateness.values)")
        }
    }

    @Test func aTickThatOverrunsTheIntervalMakesTheNextOneLate() async throws {
        try await withStartedRollout { scenario in
            // The tick due at +10 s ends at +22 s; the next was due at +20 s.
            try await hangTheTickDueAtTenSeconds(scenario, for: .seconds(12))

            let lateness = ExposedSamples(scenario.controller.histograms.exposition())
            #expect(lateness["sluice_tick_lateness_seconds_count"] == 3)
            #expect(lateness["sluice_tick_lateness_seconds_sum"] == 2, "the tick after the overrun started 2 s after its schedule")
        }
    }

    @Test func everyRecordedTickObservesItsDurationFromObservationToCommit() async throws {
        try await withStartedRollout { scenario in
            try await hangTheTickDueAtTenSeconds(scenario, for: .seconds(2))  // the observation takes 2 s
            scenario.clock.advance(by: .seconds(10))
            try await scenario.settle()

            let snapshot = scenario.controller.snapshot()
            #expect(snapshot.ticks == 3)
            let duration = ExposedSamples(scenario.controller.histograms.exposition())
            #expect(duration["sluice_reconcile_duration_seconds_count"] == Double(snapshot.ticks), "one observation per recorded tick")
            #expect(duration["sluice_reconcile_duration_seconds_sum"] == 2)
            let upToTwoAndAHalf = try #require(duration[#"sluice_reconcile_duration_seconds_bucket{le="2.5"}"#])
            let upToOne = try #require(duration[#"sluice_reconcile_duration_seconds_bucket{le="1.0"}"#])
            #expect(upToTwoAndAHalf - upToOne == 1, "the 2 s tick in (1 s, 2.5 s]: \(duration.values)")
        }
    }
}
