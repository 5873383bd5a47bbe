import Foundation

/// Admission of requests to the event loop: at most `limit` in flight per origin (scheme, host and port); the
/// rest wait here in arrival order. A waiting request costs a suspended task, not an easy handle, and it is not
/// in curl's multi handle, so the event loop's work per iteration stays bounded by what is really in flight.
/// Without this, a burst (every rollout due at once after a stall) put tens of thousands of handles into curl,
/// slowed the one loop thread that had to drain them, and the controller never caught up (BENCHMARKS.md).
/// One slow origin fills only its own slots; requests to other origins go on.
///
/// A request's `timeout` starts when it is admitted: it bounds the server, not the queue in front of it. The
/// queue is bounded by its callers (the controller's observation timeout cancels a waiting request).
final class CurlAdmission: @unchecked Sendable {
    /// One waiting request; its state is only touched under the admission's lock.
    private final class Waiter: @unchecked Sendable {
        enum State {
            case queued
            case waiting(CheckedContinuation<Void, any Error>)
            case admitted
            case cancelled
        }
        var state = State.queued
    }

    private struct Origin {
        var inFlight = 0
        /// Waiters in arrival order from `head` on; cancelled ones are skipped when reached.
        var queue: [Waiter] = []
        var head = 0
        var queued: Int { queue.count - head }
    }

    /// Requests in flight per origin.
    let limit: Int
    private let origins = LockedBox([String: Origin]())

    init(limit: Int) {
        precondition(limit > 0, "the admission limit must be positive")
        self.limit = limit
    }

    /// A slot to `origin`, now or once one is free; throws `CancellationError` when the task is cancelled
    /// while waiting. Every successful call is paired with one `release(origin)`.
    func acquire(_ origin: String) async throws {
        let waiter = origins.withLock { origins -> Waiter? in
            var entry = origins[origin, default: Origin()]
            defer { origins[origin] = entry }
            if entry.inFlight < limit, entry.queued == 0 {
                entry.inFlight += 1
                return nil
            }
            let waiter = Waiter()
            entry.queue.append(waiter)
            return waiter
        }
        guard let waiter else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let state = origins.withLock { _ -> Waiter.State in
                    if case .queued = waiter.state { waiter.state = .waiting(continuation) }
                    return waiter.state
                }
                switch state {
                case .admitted: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .queued, .waiting: break
                }
            }
        } onCancel: {
            let continuation = origins.withLock { _ -> CheckedContinuation<Void, any Error>? in
                switch waiter.state {
                case .queued:
                    waiter.state = .cancelled
                    return nil
                case .waiting(let continuation):
                    waiter.state = .cancelled
                    return continuation
                case .admitted, .cancelled:
                    return nil
                }
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// Frees a slot to `origin`: the longest-waiting request takes it, or it becomes free.
    func release(_ origin: String) {
        let admitted = origins.withLock { origins -> CheckedContinuation<Void, any Error>? in
            guard var entry = origins[origin] else { return nil }
            defer { origins[origin] = entry.inFlight == 0 ? nil : entry }
            while entry.head < entry.queue.count {
                let waiter = entry.queue[entry.head]
                entry.head += 1
                if entry.head == entry.queue.count {
                    entry.queue.removeAll()
                    entry.head = 0
                } else if entry.head >= 1024, entry.head * 2 >= entry.queue.count {
                    entry.queue.removeFirst(entry.head)
                    entry.head = 0
                }
                switch waiter.state {
                case .queued:
                    // Its continuation is not set yet: it finds `.admitted` and goes on. The slot passes to it.
                    waiter.state = .admitted
                    return nil
                case .waiting(let continuation):
                    waiter.state = .admitted
                    return continuation
                case .admitted, .cancelled:
                    continue
                }
            }
            entry.inFlight -= 1
            return nil
        }
        admitted?.resume()
    }

    /// A slot held by one admitted request.
    struct Slot: Sendable {
        let admission: CurlAdmission
        let origin: String

        func release() { admission.release(origin) }
    }

    /// Waits for a slot to the origin of `url` (see `acquire`).
    func slot(for url: String) async throws -> Slot {
        let origin = Self.origin(of: url)
        try await acquire(origin)
        return Slot(admission: self, origin: origin)
    }

    /// Requests in flight and waiting for `origin`, for tests and diagnostics.
    func load(_ origin: String) -> (inFlight: Int, queued: Int) {
        origins.withLock { origins in
            guard let entry = origins[origin] else { return (0, 0) }
            let waiting = entry.queue[entry.head...].filter { waiter in
                if case .cancelled = waiter.state { return false }
                return true
            }
            return (entry.inFlight, waiting.count)
        }
    }

    /// The origin of `url` (scheme, host and port, lower-cased; user info dropped), the key slots are counted by.
    static func origin(of url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url.lowercased() }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let host = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? authority
        return (url[..<schemeEnd.upperBound] + host).lowercased()
    }
}
