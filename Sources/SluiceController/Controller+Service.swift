import Logging
import ServiceLifecycle
import SluiceCore
import SluiceStore

extension Controller: Service {
    /// Drives every rollout that is active or has unconfirmed effects, and every rollout started later,
    /// until cancelled or a graceful shutdown (SIGTERM through a `ServiceGroup`). Effects cut short by
    /// the shutdown stay pending and are replayed by the next `run()`. Call it once per controller.
    public func run() async throws {
        defer { counters.withLock { $0.running = false } }
        logger.info("controller started")
        try await cancelWhenGracefulShutdown {
            try await self.resumeDrivenRollouts()
            self.counters.withLock { $0.running = true }
            await withDiscardingTaskGroup { group in
                group.addTask { await self.notifier.run() }
                for await driver in self.newDrivers {
                    group.addTask {
                        await driver.run()
                        self.retire(driver)
                    }
                }
                group.cancelAll()
            }
        }
        logger.info("controller stopped")
    }

    /// Drivers for what the store says is unfinished: active rollouts and unconfirmed effects.
    private func resumeDrivenRollouts() async throws {
        var delay = options.storeRetryDelay
        while true {
            do {
                let active = try await store.activeRollouts().map(\.id)
                let pending = try await store.rolloutsWithPendingEffects()
                for id in active + pending where !Task.isCancelled { _ = driver(for: id) }
                if !active.isEmpty || !pending.isEmpty {
                    logger.info(
                        "resuming rollouts", metadata: ["active": "\(active.count)", "replaying": "\(pending.count)"])
                }
                return
            } catch let error as StoreError {
                counters.withLock { $0.storeErrors += 1 }
                logger.error("cannot read the rollouts to resume; retrying", metadata: ["error": "\(error)"])
                try await clock.sleep(for: delay)  // backoff before retrying the store
                delay = min(delay * 2, .seconds(10))
            }
        }
    }
}
