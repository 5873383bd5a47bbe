import Foundation
import SluiceCore

/// At most `limit` holders per key at once; the rest wait in arrival order, each a suspended task and nothing
/// more, and a waiter that is cancelled leaves the queue. Keys are independent: a full key holds up only its own
/// waiters. `CurlClient` admits requests per origin with it; the controller admits ticks with it.
public final class AdmissionGate: @unchecked Sendable {
    /// One waiter; its state is only touched under the gate's lock.
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

    /// Holders at once per key.
    public let limit: Int
    private let origins = Locked([String: Origin]())

    public init(limit: Int) {
        precondition(limit > 0, "the admission limit must be positive")
        self.limit = limit
    }

    /// A slot of `origin` (a key) if one is free and nobody waits; false otherwise (then nothing changed).
    public func tryAcquire(_ origin: String = "") -> Bool {
        origins.withLock { origins in
            var entry = origins[origin, default: Origin()]
            guard entry.inFlight < limit, entry.queued == 0 else { return false }
            entry.inFlight += 1
            origins[origin] = entry
            return true
        }
    }

    /// A slot of `origin` (a key), now or once one is free; throws `CancellationError` when the task is cancelled
    /// while waiting. Every successful call is paired with one `release(origin)`.
    public func acquire(_ origin: String = "") async throws {
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

    /// Frees a slot of `origin`: the longest waiter takes it, or it becomes free.
    public func release(_ origin: String = "") {
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

    /// A slot held by one admitted request (HTTP: keyed by the request's origin).
    struct Slot: Sendable {
        let admission: AdmissionGate
        let origin: String

        func release() { admission.release(origin) }
    }

    /// Waits for a slot of the origin of `url` (see `acquire`).
    func slot(for url: String) async throws -> Slot {
        let origin = Self.origin(of: url)
        try await acquire(origin)
        return Slot(admission: self, origin: origin)
    }

    /// Holders and waiters of `origin`, for tests and diagnostics.
    public func load(_ origin: String = "") -> (inFlight: Int, queued: Int) {
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
    /// Read on the UTF-8 bytes when the URL is ASCII (every URL Sluice calls in practice): Foundation's
    /// `range(of:)`, the walk by Character and `split` cost ~28 k instructions a request, 4 requests a tick
    /// (BENCHMARKS.md); the answer is the same as `characterOrigin(of:)`'s, which reads any other URL.
    static func origin(of url: String) -> String {
        let bytes = Array(url.utf8)
        guard ASCIIBytes.all(bytes) else { return characterOrigin(of: url) }
        let parts = ASCIIBytes.urlAuthority(bytes)
        guard let schemeEnd = parts.schemeEnd else { return ASCIIBytes.lowercased(bytes[...]) }
        return ASCIIBytes.lowercased(bytes[..<schemeEnd], bytes[parts.hostStart..<parts.end])
    }

    /// `origin(of:)` by Character, for a URL that is not ASCII.
    static func characterOrigin(of url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url.lowercased() }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let host = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? authority
        return (url[..<schemeEnd.upperBound] + host).lowercased()
    }
}
