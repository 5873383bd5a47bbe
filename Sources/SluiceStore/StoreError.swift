import SluiceCore

/// A failure of the store, with a code the API maps to a status (404, 409, 500).
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, in terms a caller can act on.
    public enum Code: String, Sendable, Hashable {
        /// No such strategy, revision or rollout.
        case notFound
        /// The strategy already has an active rollout.
        case activeRollout
        /// The rollout changed since the caller read it (another decision was recorded first).
        case staleState
        /// A stored row could not be decoded or a value could not be encoded.
        case corruptData
        /// A decision that does not belong to the rollout it was recorded for.
        case invalidDecision
        /// SQLite failed (I/O, disk full, locked past the busy timeout).
        case database
        /// The write is for a rollout whose shard this replica no longer holds at the epoch it wrote with (another
        /// replica took the lease): refused, and the writer must act on nothing (docs/ha.md "Leases and fencing").
        case fenced
    }

    public var code: Code
    public var message: String
    /// The underlying error, when there is one. GRDB keeps statement arguments out of its descriptions, so a stored
    /// strategy source (which may hold provider headers) never shows here.
    public var underlying: String?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying.map { "\($0)" }
    }

    /// Whether trying again later may succeed.
    public var isRetryable: Bool { code == .staleState || code == .database }

    public var description: String {
        underlying.map { "\(message): \($0)" } ?? message
    }
}
