import Foundation
import SluiceController
import SluiceCore

/// A clock that moves only when a test advances it. Sleepers wake, deterministically, when the time
/// passes their deadline; `sleepers` tells a test how many tasks wait for a moment on a schedule (a driver's
/// next tick), `timers` how many wait out a bound or a backoff.
public final class ManualClock: SluiceClock, @unchecked Sendable {
    private struct Sleeper {
        var deadline: Timestamp
        var isTimer: Bool
        var continuation: CheckedContinuation<Void, any Error>
    }

    private let lock = NSLock()
    private var current: Timestamp
    private var sleeping: [UInt64: Sleeper] = [:]
    private var cancelledEarly: Set<UInt64> = []
    private var nextID: UInt64 = 0

    public init(_ start: Timestamp = Fixtures.epoch) { current = start }

    public func now() -> Timestamp { lock.withLock { current } }

    /// How many tasks are sleeping until a moment on a schedule (`sleep(until:)`) now.
    public var sleepers: Int { lock.withLock { sleeping.values.count { !$0.isTimer } } }

    /// How many bounds and backoffs (`sleep(for:)`) are running on this clock now.
    public var timers: Int { lock.withLock { sleeping.values.count { $0.isTimer } } }

    public func sleep(until deadline: Timestamp) async throws {
        try await sleep(until: deadline, isTimer: false)
    }

    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now() + duration, isTimer: true)
    }

    private func sleep(until deadline: Timestamp, isTimer: Bool) async throws {
        let id = lock.withLock {
            nextID += 1
            return nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                lock.withLock {
                    if cancelledEarly.remove(id) != nil {
                        continuation.resume(throwing: CancellationError())
                    } else if deadline <= current {
                        continuation.resume()
                    } else {
                        sleeping[id] = Sleeper(deadline: deadline, isTimer: isTimer, continuation: continuation)
                    }
                }
            }
        } onCancel: {
            let sleeper = lock.withLock {
                let sleeper = sleeping.removeValue(forKey: id)
                if sleeper == nil { cancelledEarly.insert(id) }
                return sleeper
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the time forward by `duration` and wakes every sleeper whose deadline has come.
    public func advance(by duration: Duration) {
        let woken = lock.withLock {
            current = current + duration
            let due = sleeping.filter { $0.value.deadline <= current }
            for id in due.keys { sleeping[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in woken { continuation.resume() }
    }
}
