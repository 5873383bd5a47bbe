import Logging
import SluiceCore

/// Mirrors events off the rollouts' path: `enqueue` never waits, the queue is bounded (when it is full the
/// oldest waiting event is dropped, logged and counted), and one worker posts the events in the order they were
/// enqueued, so a rollout's Events are created in `seq` order. A failure (the API server down or throttling,
/// a forbidden verb) is a warning in the log and a count; it never reaches a rollout. Each post is bounded by
/// the client's request timeout and its bounded retries (a named Event is an idempotent create).
public final class EventMirrorQueue: Sendable {
    /// One event and the Deployment it is about.
    public struct Item: Sendable {
        public var event: SluiceCore.Event
        public var deployment: String
        public var namespace: String

        public init(event: SluiceCore.Event, deployment: String, namespace: String) {
            self.event = event
            self.deployment = deployment
            self.namespace = namespace
        }
    }

    /// What happened to the events enqueued so far.
    public struct Counts: Sendable, Equatable {
        /// Created as Events.
        public var mirrored = 0
        /// Already there (posted before a restart or by a retried request).
        public var replayed = 0
        /// Refused or not answered; dropped with a warning.
        public var failed = 0
        /// Dropped unposted because the queue was full.
        public var dropped = 0

        public init() {}
    }

    public let mirror: EventMirror
    public let limit: Int
    let logger: Logger
    private let stream: AsyncStream<Item>
    private let continuation: AsyncStream<Item>.Continuation
    private let state = LockedValue(Counts())

    /// A queue of at most `limit` waiting events, posted through `mirror`; warnings go to `logger`.
    public init(mirror: EventMirror, limit: Int = 1000, logger: Logger) {
        self.mirror = mirror
        self.limit = max(1, limit)
        self.logger = logger
        (stream, continuation) = AsyncStream<Item>.makeStream(bufferingPolicy: .bufferingNewest(max(1, limit)))
    }

    /// The counts so far.
    public var counts: Counts { state.value }

    /// Queues `event` for Deployment `deployment` in `namespace`; returns at once.
    public func enqueue(_ event: SluiceCore.Event, deployment: String, namespace: String) {
        let result = continuation.yield(Item(event: event, deployment: deployment, namespace: namespace))
        if case .dropped(let old) = result {
            state.update { $0.dropped += 1 }
            logger.warning(
                "Kubernetes Event not mirrored: the queue is full",
                metadata: Self.metadata(old).merging(
                    ["queue.limit": "\(limit)"]) { a, _ in a })
        }
    }

    /// Posts queued events in order until cancelled (or `finish()` was called and the queue is empty).
    public func run() async {
        for await item in stream {
            if Task.isCancelled { return }
            await post(item)
        }
    }

    /// Ends `run()` once what is queued has been posted.
    public func finish() { continuation.finish() }

    private func post(_ item: Item) async {
        do {
            if try await mirror.mirror(item.event, deployment: item.deployment, namespace: item.namespace) != nil {
                state.update { $0.mirrored += 1 }
            } else {
                state.update { $0.replayed += 1 }
            }
        } catch {
            if Task.isCancelled { return }
            state.update { $0.failed += 1 }
            // KubernetesError and HTTPError name the operation and the server's answer, never a credential.
            logger.warning(
                "Kubernetes Event not mirrored",
                metadata: Self.metadata(item).merging(["error": "\(error)"]) { a, _ in a })
        }
    }

    private static func metadata(_ item: Item) -> Logger.Metadata {
        [
            "rollout.id": "\(item.event.rollout)", "event.seq": "\(item.event.seq)", "event.type": "\(item.event.type)",
            "deployment": "\(item.namespace)/\(item.deployment)",
        ]
    }
}
