import Logging
import ServiceLifecycle
import SluiceController
import SluiceCore
import SluiceKubernetes
import SluiceStore

/// `sluice serve` with a cluster: every committed event of a Deployment-target rollout becomes a Kubernetes
/// Event on its stable Deployment, at least once. It follows the event log from its delivery cursor (committed
/// events only, in `seq` order, a page at a time), finds the rollout's Deployment in the strategy revision the
/// rollout runs, posts the event through an `EventMirrorSink`, and advances the cursor after each page, so events
/// committed just before a crash are posted after the restart (a replayed one creates nothing). It only reads the
/// store and never waits on the controller, so a slow or failing API server never holds a rollout back.
final class EventMirrorService: ServiceLifecycle.Service, Sendable {
    let store: any RolloutStore
    let sink: EventMirrorSink
    let logger: Logger
    /// How long a graceful shutdown goes on posting what the log holds by then.
    let drainTimeout: Duration
    /// Pause before retrying the store.
    let storeRetryDelay: Duration
    /// Whether this replica mirrors now: with several replicas one does (`Controller.leads`), so that each event is
    /// posted once, not once a replica (docs/ha.md "Notifications"); always with one.
    let leads: @Sendable () -> Bool
    /// How often a replica that does not mirror asks whether it leads now (a lease changes hands in seconds).
    static let leadPoll = Duration.seconds(1)

    init(
        store: any RolloutStore, sink: EventMirrorSink, logger: Logger, drainTimeout: Duration = .seconds(5),
        storeRetryDelay: Duration = .milliseconds(500), leads: @escaping @Sendable () -> Bool = { true }
    ) {
        self.store = store
        self.sink = sink
        self.logger = logger
        self.drainTimeout = drainTimeout
        self.storeRetryDelay = storeRetryDelay
        self.leads = leads
    }

    /// Follows the log while this replica leads, until a graceful shutdown (this service is the first of the group,
    /// so that comes after the controller has stopped), then posts what the log holds for at most `drainTimeout`;
    /// stops at once on cancellation. What is left is posted by the next start, or by the replica that leads next.
    func run() async throws {
        while !Task.isCancelled {
            while !leads() {
                if Task.isShuttingDownGracefully { return }
                do { try await Task.sleep(for: Self.leadPoll) } catch { return }  // polled: see leadPoll
            }
            // A first start mirrors from now on: the history before it is not posted. A replica that leads after
            // another goes on from the cursor that one stored.
            guard
                let start = await retryingStore({
                    if let cursor = try await self.store.deliveryCursor(sink: DeliverySink.kubernetesEvents) {
                        return cursor
                    }
                    let last = try await self.store.lastSeq()
                    try await self.store.advanceDeliveryCursor(sink: DeliverySink.kubernetesEvents, to: last)
                    return last
                })
            else { return }
            let reached = (try? await cancelWhenGracefulShutdown { await self.follow(from: start, until: nil) }) ?? start
            if Task.isCancelled { return }
            if Task.isShuttingDownGracefully {
                await drain(from: reached)
                return
            }
            // follow returned without a shutdown: another replica leads now.
        }
    }

    /// Posts what the log holds now, from `reached`, for at most `drainTimeout`.
    private func drain(from reached: Int64) async {
        guard let end = await retryingStore({ try await self.store.lastSeq() }) else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await self.follow(from: reached, until: end) }
            group.addTask { try? await Task.sleep(for: self.drainTimeout) }  // the bound on draining
            await group.next()
            group.cancelAll()
        }
    }

    /// Posts events after `start` page by page, waiting for commits (`until` nil) or up to `until`, advancing the
    /// stored cursor after each page, until cancelled; returns the cursor reached.
    private func follow(from start: Int64, until end: Int64?) async -> Int64 {
        var cursor = start
        // rollout id -> its Deployment (nil: not a Deployment target); a rollout's target never changes.
        var targets: [String: (namespace: String, deployment: String)?] = [:]
        while !Task.isCancelled, leads() {
            if let end, cursor >= end { return cursor }
            let query = EventQuery(after: cursor, limit: 100)
            let store = self.store
            guard
                let events = await retryingStore({
                    end == nil ? try await store.nextEvents(query) : try await store.events(query)
                }), !events.isEmpty
            else { return cursor }
            var done = cursor
            for event in events {
                // The lead may have moved while this waited for the events: the replica that leads now posts them.
                guard leads() else { break }
                if targets[event.rollout] == nil {
                    guard let found = await retryingStore({ try await self.deployment(of: event) }) else { break }
                    if targets.count >= 1024 { targets.removeAll(keepingCapacity: true) }
                    targets[event.rollout] = .some(found)
                }
                if let target = targets[event.rollout] ?? nil {
                    await sink.post(event, deployment: target.deployment, namespace: target.namespace)
                    if Task.isCancelled { break }
                }
                done = event.seq
            }
            // Stored even when cancelled mid-page, so a graceful stop does not post the page again.
            if done > cursor {
                try? await store.advanceDeliveryCursor(sink: DeliverySink.kubernetesEvents, to: done)
                cursor = done
            }
        }
        return cursor
    }

    /// The Deployment the rollout of `event` targets, from the strategy revision it runs; nil for pools.
    private func deployment(of event: Event) async throws -> (namespace: String, deployment: String)? {
        guard let rollout = try await store.rollout(event.rollout),
            let stored = try await store.strategy(event.strategy, revision: rollout.strategyRevision),
            case .deployment(let name, _) = stored.strategy.target
        else { return nil }
        return (stored.strategy.namespace, name)
    }

    /// `body`'s result, retried after a pause while the store fails; nil once cancelled.
    private func retryingStore<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async -> T? {
        let logger = self.logger
        return await retryingUntilCancelled(delay: storeRetryDelay, failed: { error in
            logger.warning("Kubernetes Event mirror: the store failed; retrying", metadata: ["error": "\(error)"])
        }, body)
    }
}
