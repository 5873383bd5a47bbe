import Foundation
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

@testable import SluiceStore

/// `sluice backup`: SQLite's online backup of a store that is being written, checked and moved into place.
@Suite struct StoreBackupTests {
    @Test func aBackupWhileDecisionsAreRecordedIsAConsistentPrivateCopyThatOpensAsAStore() async throws {
        let directory = try makeTemporaryDirectory("sluice-backup")
        let store = try Store(path: directory + "/sluice.db", exclusive: true)
        let strategy = Fixtures.strategy()
        _ = try await store.putStrategy(strategy, source: "kind: Strategy", now: Fixtures.epoch)
        let rollout = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }.rollout
        // Decisions go on while the backups run: each copy is a snapshot between two of them.
        let writer = Task {
            for weight in 1...200 {
                _ = try await store.record(TickRecord(rolloutID: rollout.id, now: Fixtures.epoch)) { current, _ in
                    step(current, to: .progressing, weight: weight, type: .trafficShifted, now: Fixtures.epoch)
                }
            }
        }
        var copies: [StoreBackup] = []
        for index in 0..<3 {
            copies.append(try Store.backup(from: directory + "/sluice.db", to: directory + "/backup-\(index).db"))
        }
        try await writer.value

        for copy in copies {
            #expect(StoreFileModeTests.mode(copy.path) == 0o600, "it holds strategy sources")
            #expect(copy.rollouts == 1)
            #expect(copy.bytes > 0)
            let restored = try Store(path: copy.path)
            let events = try await restored.events(EventQuery(limit: 10_000))
            #expect(events.map(\.seq) == Array(1...copy.lastSeq), "the log up to the snapshot, no gap")
            let state = try #require(try await restored.rollout(rollout.id))
            #expect(state.desiredWeight == events.last?.weight ?? 5, "the state and its events from one moment")
            #expect(try await restored.strategy(strategy.key)?.source == "kind: Strategy")
        }
        #expect(copies.map(\.lastSeq) == copies.map(\.lastSeq).sorted())
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains("partial") }
        #expect(leftovers.isEmpty)
    }

    @Test func aBackupReplacesAnOlderOneWhole() async throws {
        let directory = try makeTemporaryDirectory("sluice-backup")
        let store = try Store(path: directory + "/sluice.db")
        _ = try await store.putStrategy(Fixtures.strategy(), now: Fixtures.epoch)
        try "an older backup".write(toFile: directory + "/backup.db", atomically: true, encoding: .utf8)
        let copy = try Store.backup(from: directory + "/sluice.db", to: directory + "/backup.db")
        #expect(copy.rollouts == 0)
        #expect(try await Store(path: directory + "/backup.db").strategies().count == 1)
    }

    @Test func aBackupOfNothingOrOntoItsSourceIsRefusedAndLeavesNoFile() async throws {
        let directory = try makeTemporaryDirectory("sluice-backup")
        let missing = #expect(throws: StoreError.self) {
            try Store.backup(from: directory + "/nope.db", to: directory + "/backup.db")
        }
        #expect(missing?.code == .notFound && missing?.message.contains(directory + "/nope.db") == true)
        #expect(!FileManager.default.fileExists(atPath: directory + "/nope.db"), "no empty store made up")

        try "not a database".write(toFile: directory + "/text.db", atomically: true, encoding: .utf8)
        #expect(throws: StoreError.self) {
            try Store.backup(from: directory + "/text.db", to: directory + "/backup.db")
        }

        _ = try Store(path: directory + "/sluice.db")
        let onto = #expect(throws: StoreError.self) {
            try Store.backup(from: directory + "/sluice.db", to: directory + "/./sluice.db")
        }
        #expect(onto?.message.contains("would overwrite the store it copies") == true)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(!files.contains("backup.db") && !files.contains { $0.contains("partial") }, "\(files)")
    }
}
