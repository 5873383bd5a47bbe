import Foundation
import SluiceCore

/// Fans committed events out to live subscribers. Each subscriber has its own unbounded buffer, so a
/// slow reader never delays the writer (the store publishes from its writer queue). Commit subscribers
/// only hear that events (of one strategy, or of any) were committed, one pending ring at most, for readers
/// that page the log; a commit rings only the subscribers of its strategies, however many others wait.
final class EventBroadcaster: @unchecked Sendable {
    private let lock = NSLock()
    private var subscribers: [UInt64: AsyncStream<Event>.Continuation] = [:]
    private var rings: [StrategyKey?: [UInt64: AsyncStream<Void>.Continuation]] = [:]
    private var ringKeys: [UInt64: StrategyKey?] = [:]
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

    /// A stream that yields after each commit from now on of events of `strategy` (nil: of any), coalesced, and
    /// the id to unsubscribe with.
    func subscribeCommits(strategy: StrategyKey?) -> (AsyncStream<Void>, UInt64) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = lock.withLock {
            nextID += 1
            rings[strategy, default: [:]][nextID] = continuation
            ringKeys[nextID] = .some(strategy)
            return nextID
        }
        continuation.onTermination = { [weak self] _ in self?.removeCommits(id) }
        return (stream, id)
    }

    func unsubscribeCommits(_ id: UInt64) {
        removeCommits(id)?.finish()
    }

    func publish(_ events: [Event]) {
        guard !events.isEmpty else { return }
        let keys: [StrategyKey?] = [nil] + Set(events.map(\.strategy)).map { $0 }
        let (targets, ringing) = lock.withLock {
            (Array(subscribers.values), keys.flatMap { key in rings[key].map { Array($0.values) } ?? [] })
        }
        for continuation in targets {
            for event in events { continuation.yield(event) }
        }
        for ring in ringing { ring.yield() }
    }

    /// Rings the commit subscribers of `strategy` and those of any strategy, as a commit of its events does; nil
    /// rings every commit subscriber. For commits this broadcaster did not publish: another replica's, or ones that
    /// may have been missed (readers then read the log themselves, so a ring too many costs one read).
    func ringCommits(of strategy: StrategyKey?) {
        let ringing = lock.withLock { () -> [AsyncStream<Void>.Continuation] in
            guard let strategy else { return rings.values.flatMap { Array($0.values) } }
            return [nil, strategy].flatMap { key in rings[key].map { Array($0.values) } ?? [] }
        }
        for ring in ringing { ring.yield() }
    }

    @discardableResult
    private func remove(_ id: UInt64) -> AsyncStream<Event>.Continuation? {
        lock.withLock { subscribers.removeValue(forKey: id) }
    }

    @discardableResult
    private func removeCommits(_ id: UInt64) -> AsyncStream<Void>.Continuation? {
        lock.withLock {
            guard let key = ringKeys.removeValue(forKey: id) else { return nil }
            let removed = rings[key]?.removeValue(forKey: id)
            if rings[key]?.isEmpty == true { rings[key] = nil }
            return removed
        }
    }
}

extension EventBroadcaster {
    /// The first page `read` finds for `query`, waiting for one of this broadcaster's commits while there is
    /// none; what both stores' `nextEvents` do. Throws `CancellationError` when the task is cancelled while waiting.
    func nextEvents(_ query: EventQuery, read: (EventQuery) async throws -> [Event]) async throws -> [Event] {
        while true {
            // Subscribed before reading, so a commit between the read and the wait still rings.
            let (commits, subscription) = subscribeCommits(strategy: query.strategy)
            defer { unsubscribeCommits(subscription) }
            let page = try await read(query)
            if !page.isEmpty { return page }
            var waiting = commits.makeAsyncIterator()
            guard await waiting.next() != nil, !Task.isCancelled else { throw CancellationError() }
        }
    }
}
