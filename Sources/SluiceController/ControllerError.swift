import SluiceStore

/// A failure of the controller, with a code the API maps to a status.
public struct ControllerError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// No such strategy or rollout (404).
        case notFound
        /// Refused in the rollout's current state, or the strategy already has an active rollout (409).
        case conflict
        /// The request cannot be carried out as given (422), e.g. a strategy without stages.
        case invalid
        /// An outbound call took longer than its bound.
        case timeout
        /// The store failed (500); retrying may help.
        case unavailable
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// The controller's view of a store failure.
    init(_ error: StoreError) {
        switch error.code {
        case .notFound: self.init(.notFound, error.message)
        case .activeRollout, .staleState: self.init(.conflict, error.message)
        case .invalidDecision, .corruptData, .database, .fenced: self.init(.unavailable, error.description)
        }
    }
}
