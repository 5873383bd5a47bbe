import Foundation

/// Wakes event followers (SSE streams, long polls) when the store commits new events.
///
/// It carries only the highest committed `seq`; followers always read the events themselves from the
/// store, so a missed or coalesced wake-up can delay a follower but never make it skip an event.
public final class EventSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var latestSeq: Int64 = 0
    private var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter = 0

    public init() {}

    /// The highest `seq` announced so far.
    public var latest: Int64 { lock.withLock { latestSeq } }

    /// Followers parked right now (for tests and diagnostics).
    public var waiting: Int { lock.withLock { waiters.count } }

    /// Announces that events up to `seq` are committed.
    public func advance(to seq: Int64) {
        let woken: [CheckedContinuation<Void, Never>] = lock.withLock {
            guard seq > latestSeq else { return [] }
            latestSeq = seq
            defer { waiters.removeAll() }
            return Array(waiters.values)
        }
        for waiter in woken { waiter.resume() }
    }

    /// Returns when an event after `seq` is announced, `timeout` passes, or the task is cancelled.
    public func wait(after seq: Int64, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForAdvance(after: seq) }
            group.addTask { try? await Task.sleep(for: timeout) }  // the follower's re-check period
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForAdvance(after seq: Int64) async {
        let id: Int = lock.withLock {
            nextWaiter += 1
            return nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow: Bool = lock.withLock {
                    if latestSeq > seq || Task.isCancelled { return true }
                    waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = lock.withLock { waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}
