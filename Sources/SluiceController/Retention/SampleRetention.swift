import Logging
import ServiceLifecycle
import SluiceCore
import SluiceStore

/// Retention (`sampleRetention` in sluice.yaml): every `period` on the controller's clock, drops the samples of
/// rollouts that finished more than `keep` ago. A finished rollout's samples only serve looking into it
/// afterwards; its events (each check's value and verdict on every decision) are the record and stay whole.
public struct SampleRetention: Service {
    let store: any RolloutStore
    let keep: Duration
    let period: Duration
    let clock: any SluiceClock
    let logger: Logger

    /// Prunes what finished `keep` ago at start, then every `period` (an hour by default).
    public init(
        store: any RolloutStore, keep: Duration, period: Duration = .seconds(3600), clock: any SluiceClock,
        logger: Logger
    ) {
        self.store = store
        self.keep = keep
        self.period = period
        self.clock = clock
        self.logger = logger
    }

    /// Prunes until cancelled or a graceful shutdown. A pass the store fails is logged and done at the next one.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var next = clock.now()
            while !Task.isCancelled {
                await prune()
                next = next + period
                do {
                    try await clock.sleep(until: next)
                } catch {
                    return  // the server is stopping
                }
            }
        }
    }

    /// One pass: drops the samples of rollouts finished before now minus `keep`; returns how many (nil when the
    /// store failed).
    @discardableResult
    public func prune() async -> Int? {
        let cutoff = Timestamp(millisecondsSinceEpoch: clock.now().millisecondsSinceEpoch - keep.milliseconds)
        do {
            let dropped = try await store.pruneSamples(ofRolloutsFinishedBefore: cutoff)
            if dropped > 0 {
                logger.info(
                    "pruned the samples of finished rollouts",
                    metadata: ["samples.dropped": "\(dropped)", "retention.cutoff": "\(cutoff.rfc3339)"])
            }
            return dropped
        } catch {
            logger.warning("cannot prune the samples of finished rollouts", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
