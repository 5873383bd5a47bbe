import Foundation
import GRDB
import SluiceCore

/// Durable state of Sluice on SQLite (the `RolloutStore` of one replica): strategies and their revisions,
/// rollouts, the append-only event log, recent samples, effects and pool roles. Every decision is recorded in one
/// transaction (`record`), and its events reach `eventStream` subscribers only after that transaction committed.
public final class Store: RolloutStore {
    /// How many samples are kept per rollout and check (the oldest are dropped first).
    public let samplesPerCheck: Int
    let writer: any DatabaseWriter
    let broadcaster = EventBroadcaster()
    /// The single-replica guard, held as long as the store (nil unless opened `exclusive`).
    let lock: StoreLock?

    /// Opens (creating if needed) the database at `path` in WAL mode and migrates its schema. A new file is
    /// created readable by its owner only (0600): it holds strategy sources, which may hold provider headers and
    /// webhook URLs. SQLite gives its `-wal` and `-shm` files the same mode.
    ///
    /// `exclusive` (what `sluice serve` opens with) first takes an OS lock on `<path>.lock` for as long as the store
    /// lives, and refuses to open when another process holds it: one server per file. Readers that never write
    /// (`sluice backup`) open without it.
    public convenience init(path: String, samplesPerCheck: Int = 100, exclusive: Bool = false) throws {
        let lock = exclusive && path != ":memory:" && !path.isEmpty ? try StoreLock(beside: path) : nil
        try Self.createPrivately(path)
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.label = "sluice-store"
        do {
            let pool = try DatabasePool(path: path, configuration: config)
            try self.init(writer: pool, samplesPerCheck: samplesPerCheck, lock: lock)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.database, "cannot open the store at \(path)", underlying: error)
        }
    }

    /// Creates an empty file at `path` with mode 0600 unless something is there; an existing file keeps its mode.
    static func createPrivately(_ path: String) throws {
        guard path != ":memory:", !path.isEmpty else { return }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            close(descriptor)
        } else if errno != EEXIST {
            let reason = String(cString: strerror(errno))
            throw StoreError(.database, "cannot create the store at \(path): \(reason)")
        }
    }

    /// An in-memory store, for tests and `--dry-run`.
    public static func inMemory(samplesPerCheck: Int = 100) throws -> Store {
        try Store(writer: DatabaseQueue(), samplesPerCheck: samplesPerCheck)
    }

    init(writer: any DatabaseWriter, samplesPerCheck: Int, lock: StoreLock? = nil) throws {
        precondition(samplesPerCheck > 0, "samplesPerCheck must be positive")
        self.writer = writer
        self.lock = lock
        self.samplesPerCheck = samplesPerCheck
        do {
            try Self.migrator.migrate(writer)
        } catch {
            throw StoreError(.database, "cannot migrate the store's schema", underlying: error)
        }
    }

    /// Runs `body` in one write transaction, mapping database failures to `StoreError`.
    func write<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await mapFailures(what) { try await writer.write(body) }
    }

    /// Runs `body` against a consistent snapshot, mapping database failures to `StoreError`.
    func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await mapFailures(what) { try await writer.read(body) }
    }

    func mapFailures<T>(_ what: String, _ access: () async throws -> T) async throws -> T {
        // Only SQLite's failures are the store's; what a caller's closure throws passes through as is.
        do {
            return try await access()
        } catch let error as DatabaseError {
            throw StoreError(.database, "cannot \(what)", underlying: error)
        }
    }
}

/// JSON for the store's columns: sorted keys, so equal values give equal text.
enum StoreJSON {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw StoreError(.corruptData, "cannot encode \(T.self)", underlying: error)
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch {
            throw StoreError(.corruptData, "cannot decode \(what)", underlying: error)
        }
    }
}
