import Foundation
import Logging
import SluiceCore
import SluiceHTTP
import SluiceStore

/// Delivers committed events to the strategies' webhooks at least once, off the rollouts' path. Each webhook of
/// each strategy is a sink (`WebhookSink`) that follows its strategy's events in the store from its delivery
/// cursor, so an event committed just before a crash is sent after the restart. A delivery has a timeout and
/// bounded retries with doubling backoff; a webhook that still fails is skipped for that event, logged and
/// counted, so a dead receiver never holds a rollout, or another receiver, back (docs/runtime.md "Deliveries").
final class Notifier: Sendable {
    /// How a delivery ended.
    enum Outcome: Sendable, Equatable {
        /// The receiver answered 2xx.
        case delivered
        /// Every attempt failed; the event is skipped for this webhook.
        case givenUp
        /// The task was cancelled first; the cursor stays, so the next start sends it.
        case cancelled
    }

    let store: any RolloutStore
    let http: (any HTTPClient)?
    let options: Controller.Options
    let logger: Logger
    /// Whether this replica sends a strategy's notifications: the replica that drives its rollouts (holds its
    /// shard's lease) does, the others only follow, so a receiver gets each event once from N replicas, not N times
    /// (always true with one replica; docs/ha.md "Notifications").
    let sendsFor: @Sendable (StrategyKey) -> Bool
    /// The sinks running or about to, by their cursor's name.
    private let known = Locked<Set<String>>([])
    private let newSinks: AsyncStream<WebhookSink>
    private let newSinksContinuation: AsyncStream<WebhookSink>.Continuation
    private let countersBox = Locked<Locked<ControllerSnapshot>?>(nil)

    init(
        store: any RolloutStore, http: (any HTTPClient)?, options: Controller.Options, logger: Logger,
        sendsFor: @escaping @Sendable (StrategyKey) -> Bool = { _ in true }
    ) {
        self.store = store
        self.http = http
        self.options = options
        self.logger = logger
        self.sendsFor = sendsFor
        (newSinks, newSinksContinuation) = AsyncStream<WebhookSink>.makeStream()
    }

    /// Where delivered and failed notifications are counted.
    var counters: Locked<ControllerSnapshot>? {
        get { countersBox.current }
        set { countersBox.withLock { $0 = newValue } }
    }

    /// Makes sure each of `targets` of strategy `key` has a sink following the log; returns at once. The sinks
    /// read what to send from the store, so this is only how a webhook first named after the start is found.
    func addSinks(for key: StrategyKey, targets: [NotificationTarget]) {
        for target in targets { start(WebhookSink(strategy: key, webhook: target.webhook)) }
    }

    /// Runs a sink for every webhook with a cursor or named by a strategy, and for each one `addSinks` finds
    /// later, until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.resumeSinks() }
            for await sink in newSinks {
                group.addTask { await self.follow(sink) }
            }
        }
    }

    private func start(_ sink: WebhookSink) {
        let isNew = known.withLock { $0.insert(sink.cursorName).inserted }
        if isNew { newSinksContinuation.yield(sink) }
    }

    /// The sinks of the previous run (their cursors) and of every strategy's latest revision.
    private func resumeSinks() async {
        _ = await retryingStore({ try await self.findSinks(inShards: nil) })
    }

    /// Starts the sinks not yet running of the strategies in `shards` (nil: every strategy): those with a cursor and
    /// those the strategies' latest revisions name. A replica that takes a shard calls it, so the events a replica
    /// that died had not sent yet go out even when no rollout of the strategy is active to name its webhooks.
    func findSinks(inShards shards: Set<Int>?) async throws {
        let cursors = try await store.deliveryCursors().keys.compactMap(WebhookSink.init(cursorName:))
        let named = try await store.strategies().flatMap { stored in
            stored.strategy.notifications.map { WebhookSink(strategy: stored.strategy.key, webhook: $0.webhook) }
        }
        for sink in cursors + named where shards?.contains(Shards.of(sink.strategy)) ?? true { start(sink) }
    }

    /// Posts `event` to `webhook`, retrying a bounded number of times.
    func deliver(_ event: Event, to webhook: String) async -> Outcome {
        // The webhook URL may carry a secret in its path or query: only its scheme, host and port are logged.
        let metadata: Logger.Metadata = [
            "rollout.id": "\(event.rollout)", "event.seq": "\(event.seq)",
            "webhook.url": "\(Redaction.url(webhook, keeping: .origin))",
        ]
        guard let http else {
            logger.warning("notification not sent: no HTTP client configured", metadata: metadata)
            counters?.withLock { $0.notificationsFailed += 1 }
            return .givenUp
        }
        let body: Data
        do {
            body = try EventPayload(event).json()
        } catch {
            logger.error("cannot encode an event for a webhook", metadata: metadata)
            counters?.withLock { $0.notificationsFailed += 1 }
            return .givenUp
        }
        var lastProblem = ""
        for attempt in 1...max(1, options.notificationAttempts) {
            if attempt > 1 {
                let backoff = options.notificationBackoff * (1 << min(attempt - 2, 16))
                do { try await Task.sleep(for: backoff) } catch { return .cancelled }  // backoff between bounded retries
            }
            // X-Sluice-Seq repeats the body's seq, so a receiver can drop a redelivery before parsing the body.
            let request = HTTPRequest(
                method: "POST", url: webhook,
                headers: [(name: "Content-Type", value: "application/json"), (name: "X-Sluice-Seq", value: "\(event.seq)")],
                body: body, timeout: options.notificationTimeout, connectTimeout: options.notificationTimeout,
                maxResponseBytes: 64 << 10, retry: .none)
            do {
                // Bounded in real time, like the backoff above: a delivery is no part of a rollout's schedule.
                let response = try await withTimeout(
                    options.notificationTimeout + .seconds(1), on: SystemClock(), "a webhook"
                ) {
                    try await http.execute(request)
                }
                if (200..<300).contains(response.status) {
                    counters?.withLock { $0.notificationsDelivered += 1 }
                    return .delivered
                }
                lastProblem = "HTTP \(response.status)"
            } catch let error as HTTPError {
                if Task.isCancelled { return .cancelled }
                lastProblem = "\(error.code.rawValue): \(error.message)"  // not its description: that has the path
            } catch {
                if Task.isCancelled { return .cancelled }
                lastProblem = "\(error)"
            }
        }
        logger.warning(
            "webhook failed; notification dropped",
            metadata: metadata.merging(["error": "\(lastProblem)", "attempts": "\(options.notificationAttempts)"]) {
                a, _ in a
            })
        counters?.withLock { $0.notificationsFailed += 1 }
        return .givenUp
    }

    /// `body`'s result, retried after a pause while the store fails; nil once cancelled.
    func retryingStore<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async -> T? {
        let (logger, counters) = (self.logger, self.counters)
        return await retryingUntilCancelled(delay: options.storeRetryDelay, failed: { error in
            counters?.withLock { $0.storeErrors += 1 }
            logger.error("the store failed while delivering notifications; retrying", metadata: ["error": "\(error)"])
        }, body)
    }
}
