import SluiceCore
import Testing

@testable import SluiceProviders

/// Router calls are counted beside the metric providers' queries, by router kind and outcome.
@Suite struct RouterMetricsTests {
    struct FlakyRouter: TrafficRouter {
        struct Refused: Error {}
        func setCanaryWeight(_ weight: Int) async throws { if weight > 50 { throw Refused() } }
        func canaryWeight() async throws -> Int { 25 }
        func finalize() async throws {}
    }

    @Test func everyCallIsCountedByKindAndOutcomeAndTheRouterIsUnchanged() async throws {
        let metrics = RouterMetrics()
        let router = metrics.counting(FlakyRouter(), kind: .caddy)
        try await router.setCanaryWeight(25)
        #expect(try await router.canaryWeight() == 25)
        await #expect(throws: FlakyRouter.Refused.self) { try await router.setCanaryWeight(75) }
        try await router.finalize()
        #expect(
            metrics.counts == [
                RouterMetrics.Key(router: .caddy, outcome: .success): 3, RouterMetrics.Key(router: .caddy, outcome: .error): 1,
            ])
    }
}
