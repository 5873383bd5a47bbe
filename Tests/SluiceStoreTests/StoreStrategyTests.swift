import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

@testable import SluiceStore

@Suite struct StoreStrategyTests {
    @Test(arguments: StoreBackend.all)
    func applyCreatesThenBumpsTheRevisionOnlyWhenTheContentChanges(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        let first = Fixtures.strategy()
        let (created, outcome1) = try await store.putStrategy(first, source: "kind: Strategy # v1", now: Fixtures.epoch)
        #expect(outcome1 == .created)
        #expect(created.revision == 1)

        let (same, outcome2) = try await store.putStrategy(
            first, source: "# only a comment changed", now: Fixtures.epoch)
        #expect(outcome2 == .unchanged)
        #expect(same.revision == 1)
        #expect(same.source == "kind: Strategy # v1")

        let changed = Fixtures.strategy(hold: .seconds(60))
        let (second, outcome3) = try await store.putStrategy(changed, source: "v2", now: Fixtures.epoch + .seconds(5))
        #expect(outcome3 == .configured(previous: created))
        #expect(second.revision == 2)

        #expect(try await store.strategy(first.key)?.strategy == changed)
        #expect(try await store.strategy(first.key, revision: 1)?.strategy == first)
        #expect(try await store.strategy(first.key, revision: 3) == nil)
        #expect(try await store.strategy(StrategyKey(namespace: "default", name: "nope")) == nil)
    }

    @Test(arguments: StoreBackend.all)
    func listsTheLatestRevisionOfEachStrategyInKeyOrder(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        _ = try await store.putStrategy(Fixtures.strategy(name: "web"), now: Fixtures.epoch)
        _ = try await store.putStrategy(Fixtures.strategy(name: "api"), now: Fixtures.epoch)
        _ = try await store.putStrategy(Fixtures.strategy(name: "api", hold: .seconds(40)), now: Fixtures.epoch)
        _ = try await store.putStrategy(Fixtures.strategy(name: "web", namespace: "a"), now: Fixtures.epoch)
        let listed = try await store.strategies()
        #expect(listed.map(\.key.description) == ["a/web", "default/api", "default/web"])
        #expect(listed.map(\.revision) == [1, 2, 1])
    }

    @Test func theStoreIsDurableAndUsesWAL() async throws {
        let directory = try makeTemporaryDirectory()
        let path = directory + "/sluice.db"
        do {
            let store = try Store(path: path)
            _ = try await store.putStrategy(Fixtures.strategy(), source: "yaml", now: Fixtures.epoch)
        }
        let reopened = try Store(path: path)
        #expect(try await reopened.strategy(Fixtures.strategy().key)?.source == "yaml")
        let mode = try await reopened.writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
    }

    @Test func aStoreThatCannotBeOpenedSaysWhere() throws {
        #expect {
            _ = try Store(path: "/nonexistent-dir-\(Int.random(in: 0...1_000_000))/sluice.db")
        } throws: { error in
            let storeError = error as? StoreError
            return storeError?.code == .database && storeError?.message.contains("/nonexistent-dir-") == true
        }
    }
}
