import Dispatch

/// A synchronous `main` that runs the async command on a task and waits. valgrind 3.19 (callgrind, for
/// `sluice-bench tick`) crashes when an async `main` parks the main thread in `dispatch_main`; a main thread
/// waiting on a semaphore works.
@main
enum SluiceBenchMain {
    static func main() {
        let done = DispatchSemaphore(value: 0)
        // Detached: `main` is on the main actor, whose thread is about to block on the semaphore.
        Task.detached {
            await SluiceBench.main()
            done.signal()
        }
        done.wait()
    }
}
