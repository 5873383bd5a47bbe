import Foundation

/// The single-replica guard of a SQLite store: an exclusive OS file lock (`flock`) on `<state>.lock` beside the
/// database, held while this value lives. The kernel releases it when the process ends, however it ends (SIGKILL
/// included), so a crashed server never leaves a stale lock behind. The holder writes who it is into the file, for
/// the error of the next one that tries.
final class StoreLock: Sendable {
    /// The lock file's path.
    let path: String
    private let descriptor: Int32

    /// Takes the lock beside `databasePath`, or refuses with a `StoreError` naming the file and its holder.
    init(beside databasePath: String) throws {
        path = databasePath + ".lock"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw StoreError(.database, "cannot open the store's lock \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let failure = errno
            let holder = Self.holder(descriptor)
            close(descriptor)
            guard failure == EWOULDBLOCK else {
                throw StoreError(.database, "cannot lock the store \(path): \(String(cString: strerror(failure)))")
            }
            throw StoreError(
                .database,
                "the store \(databasePath) is in use by another sluice serve (\(holder ?? "holder unknown"); lock "
                    + "\(path)): one server per SQLite file. Stop the other one first; several replicas need "
                    + "PostgreSQL")
        }
        var host = [CChar](repeating: 0, count: 256)
        let hostname = gethostname(&host, host.count) == 0 ? String(cString: host) : "an unknown host"
        let since = ISO8601DateFormatter().string(from: Date())
        let line = "pid \(getpid()) on \(hostname) since \(since)\n"
        // Best effort: the lock holds whether or not the note is written.
        if ftruncate(descriptor, 0) == 0 {
            _ = line.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        }
    }

    /// Who holds the lock, as its holder wrote it (nil when it wrote nothing readable).
    private static func holder(_ descriptor: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = pread(descriptor, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        let text = String(decoding: buffer.prefix(count), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    deinit {
        // Closing the descriptor releases the lock; the file stays, empty of meaning until the next holder writes.
        close(descriptor)
    }
}
