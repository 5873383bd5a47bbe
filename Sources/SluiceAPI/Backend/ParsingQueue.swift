import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs strategy parsing on a thread of its own and stops waiting for it after a time budget.
///
/// Parsing is synchronous CPU work; on Swift's cooperative pool (one thread per core) two slow PUTs
/// would stall every other request, `/healthz` included. Here parses run one at a time on one thread
/// at a lower scheduling priority (nice 10), so a flood of PUTs queues behind each other and yields the
/// cores to everything else. A parse still queued when its caller gave up never starts; one already
/// running finishes in the background (the loader's `YAMLBudget` bounds how long that can be).
final class ParsingQueue: @unchecked Sendable {
    /// How long a caller waits for its parse, queueing included.
    let budget: Duration
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []  // guarded by condition
    private var thread: Thread?

    init(budget: Duration = .seconds(5)) {
        self.budget = budget
    }

    /// The result of `work`, run on the parsing thread; `APIError` 503 when it did not start within the
    /// budget (others were being parsed), 413 when it started but did not finish in it.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        let budget = budget
        let waiter = Waiter<T>()
        return try await withCheckedThrowingContinuation { continuation in
            waiter.wait(continuation)
            enqueue {
                guard waiter.start() else { return }
                waiter.finish(Result { try work() })
            }
            let seconds = Double(budget.components.seconds) + Double(budget.components.attoseconds) / 1e18
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
                waiter.timeOut(budget: budget)
            }
        }
    }

    private func enqueue(_ job: @escaping @Sendable () -> Void) {
        condition.withLock {
            jobs.append(job)
            if thread == nil {
                // Started on first use and kept for the life of the process, as the backend is.
                let thread = Thread { self.work() }
                thread.name = "sluice-parsing"
                thread.start()
                self.thread = thread
            }
            condition.signal()
        }
    }

    private func work() {
        #if canImport(Glibc)
            // Linux nice values are per thread, and `who` 0 is the calling thread: only this one gives way.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
        while true {
            let job = condition.withLock {
                while jobs.isEmpty { condition.wait() }
                return jobs.removeFirst()
            }
            job()
        }
    }

    /// One caller's continuation, resumed exactly once: by the parse or by the deadline.
    private final class Waiter<T: Sendable>: @unchecked Sendable {
        private enum State {
            case idle
            case queued(CheckedContinuation<T, any Error>)
            case running(CheckedContinuation<T, any Error>)
            case done
        }
        private let lock = NSLock()
        private var state = State.idle  // guarded by lock

        func wait(_ continuation: CheckedContinuation<T, any Error>) {
            lock.withLock { state = .queued(continuation) }
        }

        /// False when the caller has already given up: the parse is skipped.
        func start() -> Bool {
            lock.withLock {
                guard case .queued(let continuation) = state else { return false }
                state = .running(continuation)
                return true
            }
        }

        func finish(_ result: Result<T, any Error>) {
            let continuation = lock.withLock { () -> CheckedContinuation<T, any Error>? in
                guard case .running(let continuation) = state else { return nil }
                state = .done
                return continuation
            }
            continuation?.resume(with: result)
        }

        func timeOut(budget: Duration) {
            let (continuation, started) = lock.withLock { () -> (CheckedContinuation<T, any Error>?, Bool) in
                switch state {
                case .queued(let continuation):
                    state = .done
                    return (continuation, false)
                case .running(let continuation):
                    state = .done
                    return (continuation, true)
                case .idle, .done:
                    return (nil, false)
                }
            }
            guard let continuation else { return }
            if started {
                continuation.resume(throwing: APIError(
                    .tooLarge, "reading this strategy took longer than \(budget); make it smaller"))
            } else {
                continuation.resume(throwing: APIError(
                    .unavailable, "other strategies are being read; try again in a few seconds"))
            }
        }
    }
}
