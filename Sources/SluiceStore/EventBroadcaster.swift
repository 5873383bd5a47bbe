import Foundation
import SluiceCore

/// Fans committed events out to live subscribers. Each subscriber has its own unbounded buffer, so a
/// slow reader never delays the writer (the store publishes from its writer queue).
final class EventBroadcaster: @unchecked Sendable {
    private let lock = NSLock()
    private var subscribers: [UInt64: AsyncStream<Event>.Continuation] = [:]
    private var nextID: UInt64 = 0

    /// A stream of every event published from now on, and the id to unsubscribe with.
    func subscribe() -> (AsyncStream<Event>, UInt64) {
        let (stream, continuation) = AsyncStream<Event>.makeStream()
        let id = lock.withLock {
            nextID += 1
            subscribers[nextID] = continuation
            return nextID
        }
        continuation.onTermination = { [weak self] _ in self?.remove(id) }
        return (stream, id)
    }

    func unsubscribe(_ id: UInt64) {
        remove(id)?.finish()
    }

    func publish(_ events: [Event]) {
        guard !events.isEmpty else { return }
        let targets = lock.withLock { Array(subscribers.values) }
        for continuation in targets {
            for event in events { continuation.yield(event) }
        }
    }

    @discardableResult
    private func remove(_ id: UInt64) -> AsyncStream<Event>.Continuation? {
        lock.withLock { subscribers.removeValue(forKey: id) }
    }
}
