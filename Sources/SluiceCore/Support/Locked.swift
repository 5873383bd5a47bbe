import Synchronization

/// A value behind a `Synchronization.Mutex`, shared by reference: Sluice's one lock wrapper. A class because a
/// `Mutex` cannot be copied, and some values (the controller's counters) are shared by the objects that update them.
public final class Locked<Value>: Sendable {
    @usableFromInline let mutex = Mutex(())
    // Read and written only while `mutex` is held; `Value` need not be Sendable (curl's handles never leave the lock
    // on their own: the caller decides what `body` returns).
    @usableFromInline nonisolated(unsafe) var value: Value

    public init(_ value: Value) { self.value = value }

    /// Runs `body` with the value while holding the lock. Inlinable, so that each caller gets a version specialised
    /// for its `Value` (curl's event loop takes it for every transfer).
    @inlinable
    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure)
        -> Result
    {
        nonisolated(unsafe) var result: Result?
        try mutex.withLock { _ throws(Failure) in result = try body(&value) }
        return result!
    }

    /// A copy of the value now.
    @inlinable
    public var current: Value { withLock { $0 } }
}
