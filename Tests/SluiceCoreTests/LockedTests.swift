import SluiceCore
import Testing

/// `Locked`, the one lock wrapper (a `Synchronization.Mutex` shared by reference).
@Suite struct LockedTests {
    @Test func concurrentUpdatesAreNeverLost() async {
        let counter = Locked(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<10_000 { counter.withLock { $0 += 1 } } }
            }
        }
        #expect(counter.current == 80_000)
    }

    @Test func aThrowingBodyLeavesWhatItChangedAndReleasesTheLock() {
        struct Refused: Error {}
        let box = Locked([1])
        #expect(throws: Refused.self) { try box.withLock { values throws(Refused) in values.append(2); throw Refused() } }
        #expect(box.withLock { $0.count } == 2, "the lock is free again and the change before the throw stays")
    }
}
