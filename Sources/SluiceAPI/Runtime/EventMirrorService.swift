import Logging
import ServiceLifecycle
import SluiceCore
import SluiceKubernetes
import SluiceStore

/// `sluice serve` with a cluster: every committed event of a Deployment-target rollout becomes a Kubernetes
/// Event on its stable Deployment. It follows the event log (committed events only, in `seq` order, from
/// `after`), finds the rollout's Deployment in the strategy revision the rollout runs, and hands the event to a
/// bounded `EventMirrorQueue`. It only reads the store and never waits on the controller, so a slow or failing
/// API server never holds a rollout back; like webhooks, an event is mirrored at most once per process.
final class EventMirrorService: ServiceLifecycle.Service, Sendable {
    let store: Store
    let queue: EventMirrorQueue
    let after: Int64
    let logger: Logger
    /// How long a graceful shutdown waits for the queued events to be posted.
    let drainTimeout: Duration

    init(store: Store, queue: EventMirrorQueue, after: Int64, logger: Logger, drainTimeout: Duration = .seconds(5)) {
        self.store = store
        self.queue = queue
        self.after = after
        self.logger = logger
        self.drainTimeout = drainTimeout
    }

    /// Follows the log until a graceful shutdown (this service is the first of the group, so that comes after the
    /// controller has stopped), then posts what is queued for at most `drainTimeout`; stops at once on cancellation.
    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.queue.run() }  // ends once finished and drained
            group.addTask {
                try? await cancelWhenGracefulShutdown { await self.follow() }
                self.queue.finish()
                try? await Task.sleep(for: self.drainTimeout)  // the bound on draining, not a wait for a condition
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func follow() async {
        // rollout id -> its Deployment (nil: not a Deployment target); a rollout's target never changes.
        var targets: [String: (namespace: String, deployment: String)?] = [:]
        for await event in store.eventStream(EventQuery(after: after)) {
            let target: (namespace: String, deployment: String)?
            if let known = targets[event.rollout] {
                target = known
            } else {
                do {
                    target = try await deployment(of: event)
                } catch {
                    logger.warning(
                        "Kubernetes Event not mirrored: cannot read the rollout's strategy",
                        metadata: ["rollout.id": "\(event.rollout)", "event.seq": "\(event.seq)", "error": "\(error)"])
                    continue
                }
                if targets.count >= 1024 { targets.removeAll(keepingCapacity: true) }
                targets[event.rollout] = .some(target)
            }
            if let target { queue.enqueue(event, deployment: target.deployment, namespace: target.namespace) }
        }
    }

    /// The Deployment the rollout of `event` targets, from the strategy revision it runs; nil for pools.
    private func deployment(of event: Event) async throws -> (namespace: String, deployment: String)? {
        guard let rollout = try await store.rollout(event.rollout),
            let stored = try await store.strategy(event.strategy, revision: rollout.strategyRevision),
            case .deployment(let name, _) = stored.strategy.target
        else { return nil }
        return (stored.strategy.namespace, name)
    }
}
