import Logging
import SluiceCore

/// Posts events as Kubernetes Events one at a time, in the order it is given them, and counts what happened. A
/// failure (the API server down or throttling, a forbidden verb) is a warning in the log and a count, and the
/// event is given up; it never reaches a rollout. Each post is bounded by the client's request timeout and its
/// bounded retries. Posting an event again (a replay after a restart) creates nothing: its Event is named by `seq`.
public final class EventMirrorSink: Sendable {
    /// What happened to the events posted so far.
    public struct Counts: Sendable, Equatable {
        /// Created as Events.
        public var mirrored = 0
        /// Already there (posted before a restart or by a retried request).
        public var replayed = 0
        /// Refused or not answered; given up with a warning.
        public var failed = 0

        public init() {}
    }

    public let mirror: EventMirror
    let logger: Logger
    private let state = Locked(Counts())

    /// A sink that posts through `mirror`; warnings go to `logger`.
    public init(mirror: EventMirror, logger: Logger) {
        self.mirror = mirror
        self.logger = logger
    }

    /// The counts so far.
    public var counts: Counts { state.current }

    /// Posts `event` as an Event about Deployment `deployment` in `namespace`; returns once it is created, found
    /// already there, or given up.
    public func post(_ event: SluiceCore.Event, deployment: String, namespace: String) async {
        do {
            if try await mirror.mirror(event, deployment: deployment, namespace: namespace) != nil {
                state.withLock { $0.mirrored += 1 }
            } else {
                state.withLock { $0.replayed += 1 }
            }
        } catch {
            if Task.isCancelled { return }
            state.withLock { $0.failed += 1 }
            // KubernetesError and HTTPError name the operation and the server's answer, never a credential.
            logger.warning(
                "Kubernetes Event not mirrored",
                metadata: [
                    "rollout.id": "\(event.rollout)", "event.seq": "\(event.seq)", "event.type": "\(event.type)",
                    "deployment": "\(namespace)/\(deployment)", "error": "\(error)",
                ])
        }
    }
}
