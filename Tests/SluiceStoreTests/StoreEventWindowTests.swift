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

    /// `sluice events --trace-id`: only the events whose `traceparent` is in the trace, read in pages, with the
    /// other filters, and in a live stream.
    @Test(arguments: StoreBackend.all)
    func aTracesEventsAreFoundByItsID(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        let strategy = Fixtures.strategy(name: "a")
        _ = try await store.putStrategy(strategy, now: Fixtures.epoch)
        let rollout = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }.rollout
        let traces = ["4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c"]
        for index in 1...6 {
            let now = Fixtures.epoch + .seconds(index)
            _ = try await store.record(TickRecord(rolloutID: rollout.id, now: now)) { current, _ in
                var decision = step(current, to: .progressing, weight: index, type: .trafficShifted, now: now)
                // 1, 3, 5 in the first trace; 2 and 4 in the second; 6 in none.
                if index < 6 { decision.events[0].traceparent = "00-\(traces[(index + 1) % 2])-00f067aa0ba902b7-01" }
                return decision
            }
        }
        let first = EventQuery(traceID: traces[0])
        #expect(try await store.events(first).map(\.weight) == [1, 3, 5])
        #expect(try await store.events(EventQuery(traceID: traces[1])).map(\.weight) == [2, 4])
        let paged = try await store.events(EventQuery(strategy: strategy.key, limit: 2, traceID: traces[0]))
        #expect(paged.map(\.weight) == [1, 3])
        let page = try await store.events(EventQuery(after: 3, traceID: traces[0]))
        #expect(page.map(\.weight) == [3, 5], "after seq 3 (the start and the first two shifts)")
        #expect(try await store.events(EventQuery(rollout: "r-other", traceID: traces[0])).isEmpty)
        #expect(try await store.eventStart(first, since: nil, tail: 1) == page.last!.seq - 1)
        #expect(try await store.events(EventQuery(traceID: "ffffffffffffffffffffffffffffffff")).isEmpty)
        let start = try await store.events(EventQuery(after: 0, limit: 1))[0]
        #expect(first.matches(page[0]) && !first.matches(start), "the start has no trace")
    }
}
