import Logging
import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport
import Testing

/// The server's retention pass on the controller's clock: the samples of a rollout go `keep` after it finished,
/// at the first pass past that moment, and its events stay.
@Suite struct SampleRetentionTests {
    /// A store with one rollout that finishes at the epoch and one still running, each with one sample.
    static func store() async throws -> (Store, finished: String, running: String) {
        let store = try Store.inMemory()
        var ids: [String] = []
        for name in ["done", "live"] {
            let strategy = Fixtures.strategy(name: name)
            _ = try await store.putStrategy(strategy, now: Fixtures.epoch)
            let started = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) {
                id, stored, pools in
                Rollout.start(
                    id: id, strategy: stored.strategy, revision: stored.revision, version: "v2", actor: "ci",
                    pools: pools, supersedes: nil, now: Fixtures.epoch)
            }
            let sample = Sample(check: "error-rate", time: Fixtures.epoch, value: 0.01, verdict: .pass)
            let tick = TickRecord(rolloutID: started.rollout.id, samples: [sample], now: Fixtures.epoch)
            _ = try await store.record(tick) { rollout, _ in
                var next = rollout
                if name == "done" { next.phase = .succeeded }
                return Decision(rollout: next)
            }
            ids.append(started.rollout.id)
        }
        return (store, ids[0], ids[1])
    }

    @Test func samplesOfAFinishedRolloutGoAtTheFirstPassAfterTheRetentionAndItsEventsStay() async throws {
        let (store, finished, running) = try await Self.store()
        let events = try await store.events()
        let clock = ManualClock(Fixtures.epoch + .seconds(60))
        let retention = SampleRetention(
            store: store, keep: .seconds(3 * 3_600), period: .seconds(3_600), clock: clock,
            logger: Logger(label: "test"))
        let service = Task { try await retention.run() }
        defer { service.cancel() }
        func samples(_ id: String) async throws -> Int {
            try await store.samples(rollout: id, check: "error-rate").count
        }
        // The first pass, at start, and the two hourly ones after it: the rollout finished less than 3 h before.
        for _ in 0..<3 {
            try await waitUntil("the retention to sleep", timeout: .seconds(10)) { clock.sleepers == 1 }
            #expect(try await samples(finished) == 1)
            clock.advance(by: .seconds(3_600))
        }
        // 3 h 1 min after it finished: gone at this pass. The running rollout keeps its samples, the log is whole.
        try await waitUntil("the finished rollout's samples to go", timeout: .seconds(10)) {
            try await samples(finished) == 0
        }
        #expect(try await samples(running) == 1)
        #expect(try await store.events() == events)
        service.cancel()
        _ = try? await service.value
    }
}
