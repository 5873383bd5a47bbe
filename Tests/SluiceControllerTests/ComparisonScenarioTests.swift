import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport
import Testing

/// A comparison check through the real controller on the virtual clock: the observer asks the provider for the
/// four counts (templates rendered per side), `decide` accumulates them, the store keeps the evidence, and the
/// verdict follows the counts (docs/judge.md).
@Suite struct ComparisonScenarioTests {
    static func strategy() -> Strategy {
        var strategy = Fixtures.strategy(weights: [10, 100])
        strategy.analysis.checks = [
            Check(
                name: "errors-vs-stable", provider: "prom",
                compare: Comparison(
                    kind: .rate,
                    canary: ComparisonQueries(events: "errors{pool=\"{{canary}}\"}", requests: "requests{pool=\"{{canary}}\"}"),
                    baseline: ComparisonQueries(events: "errors{pool=\"{{stable}}\"}", requests: "requests{pool=\"{{stable}}\"}"),
                    maxIncrease: 0.2))
        ]
        return strategy
    }

    /// Answers the four queries: canary 10.0.0.2:80, stable 10.0.0.1:80, with the given error counts.
    static func counts(canaryErrors: Double, baselineErrors: Double) -> @Sendable (String) -> FakeMetrics.Answer {
        { query in
            let canary = query.contains("10.0.0.2:80")
            if query.hasPrefix("errors") { return .value(canary ? canaryErrors : baselineErrors) }
            return .value(canary ? 120 : 1080)
        }
    }

    @Test func aCanaryFailingFarMoreThanStableIsRolledBackWithItsCounts() async throws {
        let scenario = try await Scenario(strategies: [Self.strategy()])
        defer { Task { await scenario.stop() } }
        scenario.world().metrics.answer(with: Self.counts(canaryErrors: 12, baselineErrors: 3))
        let rollout = try await scenario.start()
        let final = try await scenario.tickUntilFinal(rollout.id)
        #expect(final.phase == .rolledBack)
        #expect(final.rollbackCause == .breach(check: "errors-vs-stable"))
        let breach = try #require(
            try await scenario.store.events(EventQuery(rollout: rollout.id)).first { $0.type == .checkBreached })
        #expect(breach.message.contains("errors 12/120 canary vs 3/1,080 stable; e-value"))
        #expect(breach.data["boundary"] == .number(100))
        let asked = Set(scenario.world().metrics.asked)
        #expect(asked.isSuperset(of: [
            "errors{pool=\"10.0.0.2:80\"}", "requests{pool=\"10.0.0.2:80\"}",
            "errors{pool=\"10.0.0.1:80\"}", "requests{pool=\"10.0.0.1:80\"}",
        ]))
    }

    /// A canary whose process died: its series vanish while stable's keep answering. That is a failure, rolled
    /// back on the second tick after its weight is confirmed (two silent looks in a row), not a no-data pause (#23.8).
    @Test func aCanaryWhoseSeriesVanishedWhileStableAnswersIsRolledBack() async throws {
        let scenario = try await Scenario(strategies: [Self.strategy()])
        defer { Task { await scenario.stop() } }
        scenario.world().metrics.answer { query in
            query.contains("10.0.0.2:80") ? .noData : (query.hasPrefix("errors") ? .value(3) : .value(1080))
        }
        let rollout = try await scenario.start()
        let final = try await scenario.tickUntilFinal(rollout.id, limit: 6)
        #expect(final.phase == .rolledBack)
        #expect(final.rollbackCause == .breach(check: "errors-vs-stable"))
        let events = try await scenario.store.events(EventQuery(rollout: rollout.id))
        // The tick that confirms the weight cannot judge the canary's silence yet (one CheckNoData); the next does.
        #expect(events.filter { $0.type == .checkNoData }.count <= 1)
        #expect(!events.contains { $0.type == .paused })
        #expect(events.contains { $0.type == .checkBreached && $0.message.contains("canary silent") })
    }

    @Test func aCanaryNoWorseThanStableIsPromotedWithItsEvidenceStored() async throws {
        let scenario = try await Scenario(strategies: [Self.strategy()])
        defer { Task { await scenario.stop() } }
        scenario.world().metrics.answer(with: Self.counts(canaryErrors: 0, baselineErrors: 3))
        let rollout = try await scenario.start()
        try await scenario.tick(3)
        let evidence = try #require(try await scenario.store.rollout(rollout.id)?.checks["errors-vs-stable"]?.evidence)
        #expect(evidence.intervals >= 2)
        #expect(evidence.baselineEvents == 3 * Double(evidence.intervals))
        #expect(try await scenario.tickUntilFinal(rollout.id).phase == .succeeded)
    }
}
