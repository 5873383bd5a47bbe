import Foundation
import SluiceAPI
import SluiceCore
import SluiceStore
import SluiceTestSupport
import Testing

/// `sluice serve` over a store holding more rollouts than one listing returns (1,000): `/metrics` counts
/// them all.
struct ManyRolloutsTests {
    /// Rollouts written straight into a store file before `sluice serve` opens it.
    struct Seed {
        /// 2026-11-20T08:00:00Z: the seeded rollouts are numbered `r-20261120-NNNN`.
        static let epoch = Timestamp(millisecondsSinceEpoch: 1_795_161_600_000)

        var counts: [Phase: Int] = [:]
        var ids: [String] = []

        /// `rollouts` terminal rollouts of each strategy of `plan`, in its order, one a second from `epoch`:
        /// Succeeded, RolledBack, Failed, Succeeded, ... Each strategy is `FakeBackend.strategy`.
        static func write(_ path: String, plan: [(key: StrategyKey, rollouts: Int)]) async throws -> Seed {
            let store = try Store(path: path)
            var seed = Seed()
            let cycle: [Phase] = [.succeeded, .rolledBack, .failed, .succeeded]
            for (key, _) in plan { _ = try await store.putStrategy(FakeBackend.strategy(key), now: epoch) }
            for (key, count) in plan {
                for index in 0..<count {
                    let now = Timestamp(millisecondsSinceEpoch: epoch.millisecondsSinceEpoch + Int64(seed.ids.count) * 1000)
                    let phase = cycle[index % cycle.count]
                    let recorded = try await store.startRollout(strategy: key, now: now) { id, stored, _ in
                        Decision(
                            rollout: Rollout(
                                id: id, strategy: key, strategyRevision: stored.revision, version: "v\(index)",
                                phase: phase, desiredWeight: 0, createdAt: now, updatedAt: now),
                            effects: [], events: [])
                    }
                    seed.counts[phase, default: 0] += 1
                    seed.ids.append(recorded.rollout.id)
                }
            }
            return seed
        }
    }

    @Test
    func metricsCountEveryRolloutAboveAThousand() async throws {
        let checkout = StrategyKey(namespace: "shop", name: "checkout")
        let search = StrategyKey(namespace: "web", name: "search")
        var seed = Seed()
        let server = try await ServeProcess.start { directory in
            seed = try await Seed.write(directory + "/state.db", plan: [(checkout, 300), (search, 900)])
        }
        defer { server.stop() }
        #expect(seed.counts == [.succeeded: 600, .rolledBack: 300, .failed: 300])

        let metrics = try await send("GET", URL(string: server.url)!, "/metrics").text
        for phase in Phase.allCases {
            let line = "sluice_rollouts{phase=\"\(phase.rawValue)\"} \(seed.counts[phase] ?? 0)"
            #expect(metrics.contains(line + "\n"), "missing \(line) in:\n\(metrics)")
        }
        #expect(metrics.contains("sluice_canary_weight{strategy=\"shop/checkout\"} 0\n"))
        #expect(metrics.contains("sluice_canary_weight{strategy=\"web/search\"} 0\n"))
    }
}
