import Logging
import ServiceLifecycle
import SluiceCore
import SluiceStore

extension Controller: Service {
    /// Drives every rollout that is active or has unconfirmed effects, and every rollout started later,
    /// until cancelled or a graceful shutdown (SIGTERM through a `ServiceGroup`). Effects cut short by
    /// the shutdown stay pending and are replayed by the next `run()`. Call it once per controller.
    /// With ownership, only the rollouts of the shards it leases: they resume as their leases are taken, and the
    /// leases are given back once every driver has stopped; and the commands queued for those shards are carried out.
    public func run() async throws {
        defer { counters.withLock { $0.running = false } }
        logger.info("controller started")
        try await cancelWhenGracefulShutdown {
            if self.ownership == nil { try await self.resumeDrivenRollouts() }
            self.counters.withLock { $0.running = true }
            await withDiscardingTaskGroup { group in
                group.addTask { await self.notifier.run() }
                if let ownership = self.ownership { group.addTask { await ownership.run(for: self) } }
                if let commands = self.commands { group.addTask { await self.takeQueuedCommands(from: commands) } }
                for await driver in self.newDrivers {
                    group.addTask {
                        await driver.run()
                        self.retire(driver)
                    }
                }
                group.cancelAll()
            }
        }
        await ownership?.leave()
        logger.info("controller stopped")
    }

    /// Drivers for the unfinished rollouts of `shards` (their leases were just taken): active ones, and those with
    /// unconfirmed effects, which are replayed as after a restart. False when the store could not say which.
    func resumeRollouts(inShards shards: Set<Int>) async -> Bool {
        do {
            var resumed = 0
            for rollout in try await store.activeRollouts() where shards.contains(Shards.of(rollout.strategy)) {
                _ = driver(for: rollout.id, strategy: rollout.strategy)
                resumed += 1
            }
            for id in try await store.rolloutsWithPendingEffects() {
                guard let rollout = try await store.rollout(id), shards.contains(Shards.of(rollout.strategy)) else {
                    continue
                }
                _ = driver(for: id, strategy: rollout.strategy)
                resumed += 1
            }
            if resumed > 0 { logger.info("resuming the rollouts of taken shards", metadata: ["rollouts": "\(resumed)"]) }
            // Their webhooks too: events the previous owner committed but had not sent yet go out from here.
            try await notifier.findSinks(inShards: shards)
            return true
        } catch {
            counters.withLock { $0.storeErrors += 1 }
            logger.error("cannot read the rollouts of taken shards", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Drivers for what the store says is unfinished: active rollouts and unconfirmed effects.
    private func resumeDrivenRollouts() async throws {
        var delay = options.storeRetryDelay
        while true {
            do {
                let rollouts = try await store.activeRollouts()
                let active = rollouts.map(\.id)
                let activeKeys = Dictionary(rollouts.map { ($0.id, $0.strategy) }, uniquingKeysWith: { first, _ in first })
                var pending: [(id: String, key: StrategyKey)] = []
                for id in try await store.rolloutsWithPendingEffects() {
                    if let key = activeKeys[id] {
                        pending.append((id, key))
                    } else if let rollout = try await store.rollout(id) {
                        pending.append((id, rollout.strategy))
                    }
                }
                for rollout in rollouts where !Task.isCancelled { _ = driver(for: rollout.id, strategy: rollout.strategy) }
                for (id, key) in pending where !Task.isCancelled { _ = driver(for: id, strategy: key) }
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
