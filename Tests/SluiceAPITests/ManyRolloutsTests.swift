import Foundation
import SluiceAPI
import SluiceCore
import SluiceStore
import SluiceTestSupport
import Testing

/// `sluice serve` over a store holding more rollouts than one page of `GET /v1/rollouts` (1,000): `/metrics`
/// counts them all, the listing pages through them all, and `sluice status` shows every strategy.
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

    static let checkout = StrategyKey(namespace: "shop", name: "checkout")
    static let search = StrategyKey(namespace: "web", name: "search")

    /// `sluice serve` over a store seeded with `shop/checkout`'s rollouts, then `web/search`'s.
    static func serve(checkout: Int, search: Int) async throws -> (ServeProcess, Seed) {
        var seed = Seed()
        let server = try await ServeProcess.start { directory in
            seed = try await Seed.write(directory + "/state.db", plan: [(Self.checkout, checkout), (Self.search, search)])
        }
        return (server, seed)
    }

    @Test
    func metricsCountEveryRolloutAboveAThousand() async throws {
        let (server, seed) = try await Self.serve(checkout: 300, search: 900)
        defer { server.stop() }
        #expect(seed.counts == [.succeeded: 600, .rolledBack: 300, .failed: 300])

        let metrics = try await send("GET", URL(string: server.url)!, "/metrics").text
        for phase in Phase.allCases {
            let line = "sluice_rollouts{phase=\"\(phase.rawValue)\"} \(Double(seed.counts[phase] ?? 0))"
            #expect(metrics.contains(line + "\n"), "missing \(line) in:\n\(metrics)")
        }
        #expect(metrics.contains("sluice_canary_weight{strategy=\"shop/checkout\"} 0.0\n"))
        #expect(metrics.contains("sluice_canary_weight{strategy=\"web/search\"} 0.0\n"))
    }

    @Test
    func theListingPagesThroughEveryRolloutAndStatusShowsEveryStrategy() async throws {
        // shop/checkout's one rollout is older than the 1,000 newest, which are all web/search's.
        let (server, seed) = try await Self.serve(checkout: 1, search: 1_100)
        defer { server.stop() }
        let url = URL(string: server.url)!
        let token = ServeProcess.token(.viewer)

        var listed: [String] = []
        var pages: [Int] = []
        var path = "/v1/rollouts"
        while true {
            let answer = try await send("GET", url, path, token: token)
            #expect(answer.status == 200, "\(answer.text)")
            let page = try JSONDecoder().decode(RolloutList.self, from: answer.body)
            listed += page.rollouts.map(\.id)
            pages.append(page.rollouts.count)
            guard let next = page.next else { break }
            #expect(next == page.rollouts.last?.id)
            path = "/v1/rollouts?after=\(next)"
        }
        #expect(pages == [1_000, 101])
        #expect(listed == seed.ids.reversed(), "every rollout once, newest first")

        let limited = try JSONDecoder().decode(
            RolloutList.self, from: try await send("GET", url, "/v1/rollouts?strategy=shop/checkout&limit=5", token: token).body)
        #expect(limited.rollouts.map(\.id) == [seed.ids[0]] && limited.next == nil)
        #expect(try await send("GET", url, "/v1/rollouts?after=r-19990101-0001", token: token).status == 404)
        #expect(try await send("GET", url, "/v1/rollouts?limit=1001", token: token).status == 400)

        let json = try await runSluice(["status", "-o", "json"] + server.tokenArgs(.viewer))
        #expect(json.status == 0, "\(json.stderr)")
        let shown = try JSONDecoder().decode(RolloutList.self, from: Data(json.stdout.utf8)).rollouts
        #expect(shown.map(\.strategy) == ["shop/checkout", "web/search"], "\(json.stdout.prefix(2000))")
        #expect(shown.map(\.id) == [seed.ids[0], seed.ids[1_100]], "the newest of each")
        let table = try await runSluice(["status"] + server.tokenArgs(.viewer))
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains(seed.ids[0]) && table.stdout.contains(seed.ids[1_100]), "\(table.stdout)")
        let one = try await runSluice(["status", "shop/checkout", "-o", "json"] + server.tokenArgs(.viewer))
        #expect(try JSONDecoder().decode(RolloutList.self, from: Data(one.stdout.utf8)).rollouts.map(\.id) == [seed.ids[0]])
    }
}
