import Foundation
import SluiceCore

/// Where the controller reads the time and waits: for a rollout's next tick, a bound on a call, a backoff
/// before a retry. Tests give a manual clock that they advance by hand; `sluice serve` gives `SystemClock`.
public protocol SluiceClock: Sendable {
    /// The current wall-clock time.
    func now() -> Timestamp
    /// Waits for a moment on a schedule (a rollout's next tick): returns once `deadline` has come (at once
    /// when it has passed); throws `CancellationError` when the calling task is cancelled first.
    func sleep(until deadline: Timestamp) async throws
    /// Waits out a bound on a call or a backoff before a retry: returns once `duration` has passed; throws
    /// `CancellationError` when the calling task is cancelled first.
    func sleep(for duration: Duration) async throws
    /// A moment on a clock that never jumps and keeps running while the process is stopped (SIGSTOP), as time since
    /// an arbitrary origin: what a replica measures its own lease deadline on (docs/ha.md).
    func monotonicNow() -> Duration
}

extension SluiceClock {
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now() + duration)
    }

    /// The wall clock as time since the epoch: a manual clock that only moves forward is monotonic.
    public func monotonicNow() -> Duration {
        now() - Timestamp(millisecondsSinceEpoch: 0)
    }
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

    /// A bound or a backoff on the continuous clock: a wall-clock jump neither cuts it short nor stretches it.
    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }

    /// The continuous clock (CLOCK_BOOTTIME on Linux): it runs on while the process is stopped.
    public func monotonicNow() -> Duration {
        ContinuousClock.now - Self.origin
    }

    private static let origin = ContinuousClock.now
}
