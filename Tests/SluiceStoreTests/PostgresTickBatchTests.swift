import Logging
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

@testable import SluiceStore

/// Group commit of ticks on PostgreSQL (docs/ha.md "Round trips"): the ticks that reach the store while a batch is in
/// flight go out together, as one statement in which each is fenced, checked and answered on its own.
struct PostgresTickBatchTests {
    /// The batcher with a `send` held at a gate: the first two ticks go out at once, alone (two in flight); the ten
    /// that come meanwhile wait and go out as one batch, in order, each answered with its own outcome; a second tick
    /// of one rollout waits for the batch after.
    @Test
    func ticksThatComeWhileTwoBatchesAreInFlightGoOutTogether() async throws {
        let batcher = TickBatcher(maxInFlight: 2, maxBatch: 256)
        let gate = Gate(open: false)
        let sent = Locked<[[String]]>([])
        let send: @Sendable ([TickWrite]) async throws -> [TickWriteOutcome] = { writes in
            sent.withLock { $0.append(writes.map(\.id)) }
            try await gate.pass()
            return writes.map { $0.id.hasSuffix("-stale") ? .stale : .written($0.readGeneration + 1) }
        }
        let ids = (0..<12).map { "r-\($0)" } + ["r-3-stale"]
        try await withThrowingTaskGroup(of: (String, TickWriteOutcome).self) { group in
            for (index, id) in ids.enumerated() {
                group.addTask {
                    (id, try await batcher.write(Self.write(id, generation: Int64(index)), send: send))
                }
                if index < 2 {  // the first two go out one by one, then hold their connections
                    try await waitUntil("tick \(id) to be sent", interval: .milliseconds(1)) {
                        sent.current.count == index + 1
                    }
                }
            }
            try await waitUntil("two batches at the gate, the rest waiting", interval: .milliseconds(1)) {
                gate.waiters == 2 && batcher.waiting == ids.count - 2
            }
            #expect(sent.current == [["r-0"], ["r-1"]], "nothing more is sent while two are in flight")
            gate.openGate()
            var outcomes: [String: TickWriteOutcome] = [:]
            for try await (id, outcome) in group { outcomes[id] = outcome }
            for (index, id) in ids.enumerated() where !id.hasSuffix("-stale") {
                #expect(outcomes[id] == .written(Int64(index) + 1), "\(id)")
            }
            #expect(outcomes["r-3-stale"] == .stale)
        }
        let batches = sent.current
        #expect(batches.count == 3, "\(batches)")
        #expect(batches.dropFirst(2).first?.count == 11, "the eleven that waited went out in one batch: \(batches)")
    }

    /// One rollout's second tick never shares a statement with its first: it goes in the batch after.
    @Test
    func aSecondTickOfOneRolloutWaitsForTheNextBatch() async throws {
        let batcher = TickBatcher(maxInFlight: 1, maxBatch: 256)
        let gate = Gate(open: false)
        let sent = Locked<[[String]]>([])
        let send: @Sendable ([TickWrite]) async throws -> [TickWriteOutcome] = { writes in
            sent.withLock { $0.append(writes.map(\.id)) }
            try await gate.pass()
            return writes.map { .written($0.readGeneration + 1) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await batcher.write(Self.write("r-0", generation: 0), send: send) }
            try await waitUntil("the first batch at the gate", interval: .milliseconds(1)) { gate.waiters == 1 }
            for (id, generation) in [("r-1", 0), ("r-1", 1), ("r-2", 0)] {
                group.addTask { _ = try await batcher.write(Self.write(id, generation: Int64(generation)), send: send) }
            }
            try await waitUntil("three ticks waiting", interval: .milliseconds(1)) { batcher.waiting == 3 }
            gate.openGate()
            try await group.waitForAll()
        }
        let batches = sent.current
        #expect(batches.count == 3, "\(batches)")
        #expect(batches.first == ["r-0"])
        #expect(batches.dropFirst().first.map(Set.init) == ["r-1", "r-2"], "\(batches)")
        #expect(batches.last == ["r-1"], "the second tick of r-1 went out in the batch after: \(batches)")
    }

    /// A failed batch fails each of its ticks with the error, and the batcher goes on with the next.
    @Test
    func aFailedBatchFailsEachOfItsTicks() async throws {
        let batcher = TickBatcher(maxInFlight: 1, maxBatch: 256)
        let failing = Locked(true)
        let send: @Sendable ([TickWrite]) async throws -> [TickWriteOutcome] = { writes in
            if failing.current { throw StoreError(.database, "connection reset") }
            return writes.map { .written($0.readGeneration + 1) }
        }
        await #expect(throws: StoreError.self) {
            try await batcher.write(Self.write("r-0", generation: 0), send: send)
        }
        failing.withLock { $0 = false }
        #expect(try await batcher.write(Self.write("r-0", generation: 0), send: send) == .written(1))
    }

    /// The statement itself, on a fenced store: in one batch a tick is written, one is stale, one fenced by an epoch
    /// the lease moved past, one of a rollout that does not exist; only the first writes anything (its row and its
    /// samples), and each is answered in the batch's order.
    @Test
    func inOneStatementEachTickIsFencedAndCheckedOnItsOwn() async throws {
        let database = try await PostgresDatabase.make()
        let view = LeaseView(replica: "a")
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let store = try await PostgresStore.open(database.configuration, samplesPerCheck: 2, leases: view, logger: logger)
        let strategies = (0..<3).map { Fixtures.strategy(name: "batch-\($0)") }
        let shards = Set(strategies.map { Shards.of($0.key) })
        view.set(try await store.acquireLeases(Array(shards), replica: "a", duration: .seconds(15)))
        var started: [RecordedDecision] = []
        for strategy in strategies {
            _ = try await store.putStrategy(strategy, now: Fixtures.epoch)
            started.append(
                try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
                    startDecision(id, stored, pools, now: Fixtures.epoch)
                })
        }
        let time = Fixtures.epoch + .seconds(10)
        func write(_ recorded: RecordedDecision, generation: Int64? = nil, epochAhead: Int64 = 0) throws -> TickWrite {
            var rollout = recorded.rollout
            rollout.updatedAt = time
            let lease = try #require(try store.heldLease(of: rollout.strategy, what: "test"))
            var fence = FenceParameters(lease)
            fence.epoch += epochAhead
            let samples = [
                Sample(check: "error-rate", time: time, value: 0.01, verdict: .pass),
                Sample(check: "latency", time: time, value: 0.2, verdict: .pass),
            ]
            return TickWrite(
                fence: fence, phase: rollout.phase.rawValue, active: true, updatedAt: time.millisecondsSinceEpoch,
                content: try StoreJSON.encode(rollout), observedAt: time.millisecondsSinceEpoch, id: rollout.id,
                readGeneration: generation ?? recorded.generation, checks: samples.map(\.check),
                times: samples.map(\.time.millisecondsSinceEpoch), contents: try samples.map { try StoreJSON.encode($0) })
        }
        var missing = try write(started[0])
        missing.id = "r-does-not-exist"
        let writes = [
            try write(started[0]), try write(started[1], generation: started[1].generation - 1),
            try write(started[2], epochAhead: 1), missing,
        ]
        let outcomes = try await store.single("test") { try await store.writeTicks($0, writes) }
        #expect(outcomes == [.written(started[0].generation + 1), .stale, .fenced, .notFound])
        for (index, recorded) in started.enumerated() {
            let after = try #require(try await store.rolloutRecord(recorded.rollout.id))
            let samples = try await store.samples(rollout: recorded.rollout.id, check: "error-rate")
            if index == 0 {
                #expect(after.generation == recorded.generation + 1)
                #expect(after.observedAt == time)
                #expect(samples.map(\.value) == [0.01])
            } else {
                #expect(after.generation == recorded.generation, "rollout \(index) is not written")
                #expect(after.observedAt == nil)
                #expect(samples.isEmpty, "rollout \(index) has no sample")
            }
        }
        await store.close()
    }

    static func write(_ id: String, generation: Int64) -> TickWrite {
        TickWrite(
            fence: FenceParameters(nil), phase: "Progressing", active: true, updatedAt: 0, content: "{}",
            observedAt: nil, id: id, readGeneration: generation, checks: [], times: [], contents: [])
    }
}
