import SluiceCore
import SluiceRuntimeTestSupport
import Testing

@testable import SluiceStore

/// `eventStart`: where `sluice events --since` and `--tail` start, found from the newest end of the log.
@Suite struct StoreEventWindowTests {
    /// Two strategies' rollouts, events interleaved, one every 10 s: seq 1 (a) and 2 (b) at the epoch, then
    /// seq 3...8 at epoch + 10 s ... + 60 s, alternating a, b.
    func log(_ backend: StoreBackend) async throws -> (any RolloutStore, Rollout, Rollout) {
        let store = try await backend.make()
        var rollouts: [Rollout] = []
        for name in ["a", "b"] {
            let strategy = Fixtures.strategy(name: name)
            _ = try await store.putStrategy(strategy, now: Fixtures.epoch)
            rollouts.append(
                try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
                    startDecision(id, stored, pools, now: Fixtures.epoch)
                }.rollout)
        }
        for index in 1...6 {
            let now = Fixtures.epoch + .seconds(index * 10)
            _ = try await store.record(TickRecord(rolloutID: rollouts[(index + 1) % 2].id, now: now)) { current, _ in
                step(current, to: .progressing, weight: index, type: .trafficShifted, now: now)
            }
        }
        return (store, rollouts[0], rollouts[1])
    }

    @Test(arguments: StoreBackend.all)
    func sinceStartsAtTheFirstEventAtOrAfterTheTime(_ backend: StoreBackend) async throws {
        let (store, a, _) = try await log(backend)
        #expect(try await store.events().map(\.seq) == Array(1...8))
        func listed(_ query: EventQuery, since seconds: Int?, tail: Int? = nil) async throws -> [Int64] {
            var window = query
            window.after = try await store.eventStart(
                query, since: seconds.map { Fixtures.epoch + .seconds($0) }, tail: tail)
            return try await store.events(window).map(\.seq)
        }
        #expect(try await listed(EventQuery(), since: 30) == [5, 6, 7, 8])
        #expect(try await listed(EventQuery(), since: 25) == [5, 6, 7, 8])
        #expect(try await listed(EventQuery(), since: 0) == Array(1...8))
        #expect(try await listed(EventQuery(), since: 61) == [])
        #expect(try await listed(EventQuery(rollout: a.id), since: 30) == [5, 7])
        #expect(try await listed(EventQuery(strategy: a.strategy), since: nil, tail: 2) == [5, 7])
        #expect(try await listed(EventQuery(), since: nil, tail: 3) == [6, 7, 8])
        #expect(try await listed(EventQuery(), since: nil, tail: 100) == Array(1...8))
        #expect(try await listed(EventQuery(), since: 30, tail: 100) == [5, 6, 7, 8], "the tail of the window only")
        #expect(try await listed(EventQuery(after: 6), since: 10, tail: 5) == [7, 8], "never before `after`")
    }
}
