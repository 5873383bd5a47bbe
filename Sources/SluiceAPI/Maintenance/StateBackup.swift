import SluiceStore

/// `sluice backup`: the server's SQLite store copied while the server runs (SQLite's online backup).
public enum StateBackup {
    /// What a backup wrote, read back from the copy.
    public struct Result: Sendable, Hashable {
        public var path: String
        public var rollouts: Int
        /// The newest event in the copy (0 when its log is empty).
        public var lastSeq: Int64
        public var bytes: Int64
    }

    /// Copies the store at `statePath` to `destination` (replaced atomically when it exists; 0600), without
    /// locking, writing or migrating the store.
    public static func run(statePath: String, to destination: String) throws -> Result {
        let copy = try Store.backup(from: statePath, to: destination)
        return Result(path: copy.path, rollouts: copy.rollouts, lastSeq: copy.lastSeq, bytes: copy.bytes)
    }
}
