import Foundation
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

@testable import SluiceStore

/// The single-replica guard of SQLite: one exclusive store per file (`sluice serve`), readers beside it.
@Suite struct StoreLockTests {
    @Test func aSecondExclusiveStoreOnTheFileIsRefusedWithTheFileAndItsHolder() async throws {
        let path = try makeTemporaryDirectory("sluice-store-lock") + "/sluice.db"
        var first: Store? = try Store(path: path, exclusive: true)
        _ = try await first?.putStrategy(Fixtures.strategy(), now: Fixtures.epoch)

        let error = #expect(throws: StoreError.self) { try Store(path: path, exclusive: true) }
        #expect(error?.message.contains("the store \(path) is in use by another sluice serve") == true, "\(error!)")
        #expect(error?.message.contains("pid \(getpid()) on ") == true, "names the holder: \(error!)")
        #expect(error?.message.contains(path + ".lock") == true)

        // A reader that does not take the lock (`sluice backup`) opens it meanwhile and sees what was written.
        let reader = try Store(path: path)
        #expect(try await reader.strategy(Fixtures.strategy().key) != nil)

        // Once the holder is gone, the next one takes the lock.
        first = nil
        let next = try Store(path: path, exclusive: true)
        #expect(try await next.strategy(Fixtures.strategy().key) != nil)
    }
}
