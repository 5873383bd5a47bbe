import Foundation
import GRDB

/// What `Store.backup(from:to:)` wrote, read back from the copy.
public struct StoreBackup: Sendable, Hashable {
    /// The copy's path.
    public var path: String
    /// Rollouts in the copy.
    public var rollouts: Int
    /// The newest event's `seq` in the copy (0 when its log is empty).
    public var lastSeq: Int64
    /// The copy's size.
    public var bytes: Int64
}

extension Store {
    /// Copies the SQLite store at `source` to `destination` with SQLite's online backup, while a server may be
    /// writing to it: the copy is one consistent snapshot (a read transaction; in WAL mode the server's writes go
    /// on meanwhile). It is written beside `destination` readable by its owner only (0600: it holds strategy
    /// sources), checked (`PRAGMA quick_check`), and then renamed over `destination`, so `destination` is always
    /// either the previous file or a complete copy. `source` is neither locked, written nor migrated.
    public static func backup(from source: String, to destination: String) throws -> StoreBackup {
        guard FileManager.default.fileExists(atPath: source) else {
            throw StoreError(.notFound, "there is no store at \(source)")
        }
        let sourceURL = URL(fileURLWithPath: source).standardizedFileURL.resolvingSymlinksInPath()
        let destinationURL = URL(fileURLWithPath: destination).standardizedFileURL.resolvingSymlinksInPath()
        guard sourceURL != destinationURL else {
            throw StoreError(.database, "the backup \(destination) would overwrite the store it copies")
        }
        let partial = destination + ".partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: partial)
        try createPrivately(partial)
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            configuration.label = "sluice-backup"
            let from = try DatabaseQueue(path: source, configuration: configuration)
            defer { try? from.close() }
            let isStore = try from.read { db in try db.tableExists("events") && db.tableExists("rollouts") }
            guard isStore else { throw StoreError(.corruptData, "\(source) is not a Sluice store") }
            let to = try DatabaseQueue(path: partial)
            try from.backup(to: to)
            let (check, rollouts, lastSeq) = try to.read { db in
                (
                    try String.fetchAll(db, sql: "PRAGMA quick_check"),
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rollouts") ?? 0,
                    try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM events") ?? 0
                )
            }
            try to.close()
            guard check == ["ok"] else {
                let problems = check.joined(separator: "; ")
                throw StoreError(.corruptData, "the copy of \(source) fails its check: \(problems)")
            }
            guard rename(partial, destination) == 0 else {
                let reason = String(cString: strerror(errno))
                throw StoreError(.database, "cannot move the backup into place at \(destination): \(reason)")
            }
            let attributes = try? FileManager.default.attributesOfItem(atPath: destination)
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? 0
            return StoreBackup(path: destination, rollouts: rollouts, lastSeq: lastSeq, bytes: size)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            if let error = error as? StoreError { throw error }
            throw StoreError(.database, "cannot back up \(source) to \(destination)", underlying: error)
        }
    }
}
