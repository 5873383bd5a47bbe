import GRDB
import SluiceTestSupport
import Testing

@testable import SluiceStore

/// A store backend the suite runs against. The tests of what a `RolloutStore` guarantees take one as their
/// argument (`@Test(arguments: StoreBackend.all)`), so a new backend runs all of them by adding one line to `all`.
struct StoreBackend: Sendable, CustomTestStringConvertible {
    /// Every backend; each protocol test runs once per entry.
    static let all: [StoreBackend] = [.sqlite, .postgres]

    /// Opens a store.
    typealias Open = @Sendable () async throws -> any RolloutStore

    var name: String
    /// An empty store keeping at most `samplesPerCheck` samples per rollout and check.
    var empty: @Sendable (_ samplesPerCheck: Int) async throws -> any RolloutStore
    /// An empty store that outlives its handle, and how to open it again (as a restarted server does).
    var durable: @Sendable () async throws -> (store: any RolloutStore, reopen: Open)
    /// Runs one SQL statement on the store's database outside its API, as an operator with a shell could.
    var execute: @Sendable (_ store: any RolloutStore, _ sql: String) async throws -> Void

    var testDescription: String { name }

    /// An empty store.
    func make(samplesPerCheck: Int = 100) async throws -> any RolloutStore {
        try await empty(samplesPerCheck)
    }

    static let sqlite = StoreBackend(
        name: "sqlite",
        empty: { samplesPerCheck in try Store.inMemory(samplesPerCheck: samplesPerCheck) },
        durable: {
            let path = try makeTemporaryDirectory("sluice-store") + "/sluice.db"
            return (try Store(path: path), { try Store(path: path) })
        },
        execute: { store, sql in
            let sqlite = try #require(store as? Store)
            try await sqlite.writer.write { db in try db.execute(sql: sql) }
        }
    )
}
