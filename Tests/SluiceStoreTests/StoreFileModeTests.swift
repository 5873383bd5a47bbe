import Foundation
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport
import Testing

/// The store holds strategy sources (provider headers, webhook URLs): a new one is its owner's alone.
@Suite struct StoreFileModeTests {
    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o777
    }

    @Test func aNewStoreAndItsWALAreReadableByTheirOwnerOnly() async throws {
        let path = try makeTemporaryDirectory("sluice-store-mode") + "/sluice.db"
        let store = try Store(path: path)
        _ = try await store.putStrategy(Fixtures.strategy(), source: "headers: {X-Api-Key: k}", now: Fixtures.epoch)
        #expect(Self.mode(path) == 0o600)
        // SQLite gives the WAL and shared-memory files the database file's mode.
        #expect(Self.mode(path + "-wal") == 0o600)
        #expect(Self.mode(path + "-shm") == 0o600)
    }

    @Test func anExistingStoreKeepsTheModeItsOperatorGaveIt() async throws {
        let path = try makeTemporaryDirectory("sluice-store-mode") + "/sluice.db"
        #expect(FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o640]))
        _ = try Store(path: path)
        #expect(Self.mode(path) == 0o640)
    }

    @Test func aStoreThatCannotBeCreatedSaysWhere() throws {
        let error = #expect(throws: StoreError.self) { try Store(path: "/nonexistent-dir/sluice.db") }
        #expect(error?.description.contains("/nonexistent-dir/sluice.db") == true)
    }
}
