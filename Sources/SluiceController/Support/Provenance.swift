import SluiceCore
import SluiceHTTP
import Tracing

/// Where a decision came from: the API request and the trace it was made in, stamped on its events (and, for a
/// command or a start, on the rollout, so the ticks and effects that carry it out continue its trace).
struct Provenance: Sendable {
    var requestID: String?
    var traceparent: String?

    /// The request id and `traceparent` of the current task's context (the API request's span).
    static func current(_ tracer: (any Tracer)?) -> Provenance {
        guard let context = ServiceContext.current else { return Provenance() }
        return Provenance(requestID: context.requestID, traceparent: tracer?.traceparent(of: context))
    }

    /// `decision` with this provenance on its events and its rollout.
    func stamp(_ decision: Decision) -> Decision {
        var decision = decision
        decision.rollout.traceparent = traceparent
        stampEvents(&decision)
        return decision
    }

    /// This provenance on the events of `decision` only (a tick's: the rollout keeps its command's trace).
    func stampEvents(_ decision: inout Decision) {
        guard requestID != nil || traceparent != nil else { return }
        for index in decision.events.indices {
            decision.events[index].requestID = requestID
            decision.events[index].traceparent = traceparent
        }
    }
}
