import Foundation

/// A value guarded by an `NSLock`. `Synchronization.Mutex` draws ThreadSanitizer false positives next to
/// libcurl's thread (docs/development.md), this does not.
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

extension Duration {
    /// Whole milliseconds, rounded up so a short positive timeout never becomes 0 ("no timeout" to curl).
    var roundedUpMilliseconds: Int {
        let (seconds, attoseconds) = components
        let millis = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int(max(0, millis))
    }
}
