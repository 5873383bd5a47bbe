import Foundation
import Logging
import SluiceCore
import SluiceHTTP

/// Delivers committed events to a strategy's webhooks, off the rollouts' path: `enqueue` never waits,
/// the queue is bounded (the oldest are dropped), and each delivery has a timeout and bounded retries
/// with doubling backoff. A failing webhook is logged and counted; it never holds a rollout back.
final class Notifier: Sendable {
    struct Delivery: Sendable {
        var event: Event
        var webhook: String
    }

    let http: (any HTTPClient)?
    let options: Controller.Options
    let logger: Logger
    private let queue: AsyncStream<Delivery>
    private let continuation: AsyncStream<Delivery>.Continuation
    private let countersBox = Locked<Locked<ControllerSnapshot>?>(nil)

    init(http: (any HTTPClient)?, options: Controller.Options, logger: Logger) {
        self.http = http
        self.options = options
        self.logger = logger
        (queue, continuation) = AsyncStream<Delivery>.makeStream(
            bufferingPolicy: .bufferingNewest(max(1, options.notificationQueueLimit)))
    }

    /// Where delivered, failed and dropped notifications are counted.
    var counters: Locked<ControllerSnapshot>? {
        get { countersBox.current }
        set { countersBox.withLock { $0 = newValue } }
    }

    /// Queues `events` for every target that wants their type (an empty `on` wants every type).
    func enqueue(_ events: [Event], targets: [NotificationTarget]) {
        for event in events {
            for target in targets where target.on.isEmpty || target.on.contains(event.type.rawValue) {
                if case .dropped = continuation.yield(Delivery(event: event, webhook: target.webhook)) {
                    counters?.withLock { $0.notificationsDropped += 1 }
                }
            }
        }
    }

    /// Delivers queued notifications in order until cancelled.
    func run() async {
        for await delivery in queue {
            if Task.isCancelled { return }
            await deliver(delivery)
        }
    }

    private func deliver(_ delivery: Delivery) async {
        // The webhook URL may carry a secret in its path or query: only its scheme, host and port are logged.
        let metadata: Logger.Metadata = [
            "rollout.id": "\(delivery.event.rollout)", "event.seq": "\(delivery.event.seq)",
            "webhook.url": "\(Redaction.url(delivery.webhook, keeping: .origin))",
        ]
        guard let http else {
            logger.warning("notification not sent: no HTTP client configured", metadata: metadata)
            counters?.withLock { $0.notificationsFailed += 1 }
            return
        }
        let body: Data
        do {
            body = try EventPayload(delivery.event).json()
        } catch {
            logger.error("cannot encode an event for a webhook", metadata: metadata)
            return
        }
        var lastProblem = ""
        for attempt in 1...max(1, options.notificationAttempts) {
            if attempt > 1 {
                let backoff = options.notificationBackoff * (1 << min(attempt - 2, 16))
                do { try await Task.sleep(for: backoff) } catch { return }  // backoff between bounded retries
            }
            let request = HTTPRequest(
                method: "POST", url: delivery.webhook, headers: [(name: "Content-Type", value: "application/json")],
                body: body, timeout: options.notificationTimeout, connectTimeout: options.notificationTimeout,
                maxResponseBytes: 64 << 10, retry: .none)
            do {
                let response = try await withTimeout(options.notificationTimeout + .seconds(1), "a webhook") {
                    try await http.execute(request)
                }
                if (200..<300).contains(response.status) {
                    counters?.withLock { $0.notificationsDelivered += 1 }
                    return
                }
                lastProblem = "HTTP \(response.status)"
            } catch let error as HTTPError {
                if Task.isCancelled { return }
                lastProblem = "\(error.code.rawValue): \(error.message)"  // not its description: that has the path
            } catch {
                if Task.isCancelled { return }
                lastProblem = "\(error)"
            }
        }
        logger.warning(
            "webhook failed; notification dropped",
            metadata: metadata.merging(["error": "\(lastProblem)", "attempts": "\(options.notificationAttempts)"]) {
                a, _ in a
            })
        counters?.withLock { $0.notificationsFailed += 1 }
    }
}
