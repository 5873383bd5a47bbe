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
            let first = scenario.controller.snapshot().tickLateness
            #expect(first.count == 1, "the first tick runs as soon as the rollout starts")
            #expect(first.sum == 0)

            scenario.clock.advance(by: .seconds(13))  // due at +10 s, observed at +13 s: 3 s late
            try await scenario.settle()
            scenario.clock.advance(by: .seconds(10))  // due at +23 s (that tick's start + 10 s): on time
            try await scenario.settle()

            let lateness = scenario.controller.snapshot().tickLateness
            #expect(lateness.count == 3)
            #expect(lateness.sum == 3)
            #expect(lateness.bucketCounts[0] == 2, "two ticks on time, in the first bucket (≤ 1 ms)")
            let fiveSeconds = try #require(lateness.bounds.firstIndex(of: 5))
            #expect(lateness.bucketCounts[fiveSeconds] == 1, "the late tick in (2.5 s, 5 s]: \(lateness.bucketCounts)")
        }
    }

    @Test func aTickThatOverrunsTheIntervalMakesTheNextOneLate() async throws {
        try await withStartedRollout { scenario in
            // The tick due at +10 s ends at +22 s; the next was due at +20 s.
            try await hangTheTickDueAtTenSeconds(scenario, for: .seconds(12))

            let lateness = scenario.controller.snapshot().tickLateness
            #expect(lateness.count == 3)
            #expect(lateness.sum == 2, "the tick after the overrun started 2 s after its schedule")
        }
    }

    @Test func everyRecordedTickObservesItsDurationFromObservationToCommit() async throws {
        try await withStartedRollout { scenario in
            try await hangTheTickDueAtTenSeconds(scenario, for: .seconds(2))  // the observation takes 2 s
            scenario.clock.advance(by: .seconds(10))
            try await scenario.settle()

            let snapshot = scenario.controller.snapshot()
            #expect(snapshot.ticks == 3)
            #expect(snapshot.reconcileDuration.count == snapshot.ticks, "one observation per recorded tick")
            #expect(snapshot.reconcileDuration.sum == 2)
            let bucket = try #require(snapshot.reconcileDuration.bounds.firstIndex(of: 2.5))
            #expect(snapshot.reconcileDuration.bucketCounts[bucket] == 1, "\(snapshot.reconcileDuration.bucketCounts)")
        }
    }
}
