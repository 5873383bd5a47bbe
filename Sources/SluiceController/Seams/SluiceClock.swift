import Foundation
import SluiceCore

/// Where the controller reads the time and waits for its next tick. Tests give a manual clock that
/// they advance by hand; `sluice serve` gives `SystemClock`.
public protocol SluiceClock: Sendable {
    /// The current wall-clock time.
    func now() -> Timestamp
    /// Returns once `deadline` has come (at once when it has passed); throws `CancellationError` when
    /// the calling task is cancelled first.
    func sleep(until deadline: Timestamp) async throws
}

/// The real clock: wall-clock time, sleeping on the system's continuous clock.
public struct SystemClock: SluiceClock {
    public init() {}

    public func now() -> Timestamp {
        Timestamp(Date())
    }

    public func sleep(until deadline: Timestamp) async throws {
        let remaining = deadline - now()
        if remaining > .zero { try await Task.sleep(for: remaining) }
    }
}
