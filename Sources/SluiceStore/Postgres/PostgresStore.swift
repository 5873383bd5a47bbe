import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import SluiceCore

/// Durable state of Sluice on PostgreSQL, for several replicas sharing one database (docs/ha.md): the same tables
/// and the same guarantees as the SQLite `Store`. Every decision is recorded in one transaction whose generation
/// check runs in the database (the rollout's row is locked, `SELECT ... FOR UPDATE`); the event log is append-only
/// (triggers refuse UPDATE, DELETE and TRUNCATE); and `seq` comes from one counter row updated in the appending
/// transaction, so appends are serialized and commit in `seq` order: no reader ever sees N+1 before N.
///
/// Open it with `open`; it runs its connection pool until `close()` (or, as a `Service` in `sluice serve`'s group,
/// until graceful shutdown).
public final class PostgresStore: Sendable, Service {
    /// How many samples are kept per rollout and check (the oldest are dropped first).
    public let samplesPerCheck: Int
    /// Where the store is (its password stays in its file).
    public let configuration: PostgresConfiguration
    let client: PostgresClient
    let logger: Logger
    /// The shards this replica holds and their epochs, which every write for a rollout is fenced by (nil: no fencing,
    /// one replica alone on the database).
    let leases: LeaseView?
    let broadcaster = EventBroadcaster()
    /// Gathers the one-statement ticks that reach the store within 10 ms, or while the batch before is in flight, into
    /// one statement (`TickBatcher`; BENCHMARKS.md "Group commit of ticks"): one in flight, so a replica's ticks take
    /// one of its pool's connections.
    let tickBatcher = TickBatcher(maxInFlight: 1, maxBatch: 256, gather: .milliseconds(10))
    /// The commands queue's notices from every replica (`CommandQueue.commandNotices`).
    let notices = CommandNotices()
    private let pool: Task<Void, Never>
    /// Listens for every replica's commits and queued commands (`listen(_:to:notices:retry:maxRetry:logger:)`).
    private let listener: Task<Void, Never>

    private init(
        configuration: PostgresConfiguration, client: PostgresClient, listening: PostgresConnection.Configuration,
        samplesPerCheck: Int, leases: LeaseView?, logger: Logger
    ) {
        self.configuration = configuration
        self.leases = leases
        self.client = client
        self.samplesPerCheck = samplesPerCheck
        self.logger = logger
        // The pool's own long-running task (PostgresClient needs one): cancelled and awaited by `close()`.
        self.pool = Task { await client.run() }
        let broadcaster = self.broadcaster
        let notices = self.notices
        self.listener = Task {
            await Self.listen(
                listening, to: broadcaster, notices: notices, retry: .milliseconds(100), maxRetry: .seconds(2),
                logger: logger)
        }
    }

    /// Connects to the database `configuration` names and migrates its schema (under an advisory lock, so that
    /// replicas starting together migrate once). Fails with `StoreError` (`.database`) when the database cannot be
    /// reached or the password file read; the message names the host and database, never the password. With `leases`
    /// (several replicas), every write for a rollout is refused (`fenced`) unless this replica holds its shard at the
    /// epoch `leases` says (docs/ha.md "Leases and fencing").
    public static func open(
        _ configuration: PostgresConfiguration, samplesPerCheck: Int = 100, leases: LeaseView? = nil, logger: Logger
    ) async throws -> PostgresStore {
        precondition(samplesPerCheck > 0, "samplesPerCheck must be positive")
        let (first, pooled) = try configuration.connectionConfigurations()
        let opening = "open the store at \(configuration.displayName)"
        // One connection first: the pool retries a refused connection until its circuit breaker trips (a minute),
        // where this one fails at once with the reason (refused, bad password, no such database).
        do {
            let connection = try await PostgresConnection.connect(configuration: first, id: 0, logger: logger)
            try? await connection.close()
        } catch {
            throw StoreError(.database, "cannot \(opening)", underlying: PostgresFailure(error))
        }
        let store = PostgresStore(
            configuration: configuration, client: PostgresClient(configuration: pooled, backgroundLogger: logger),
            listening: first, samplesPerCheck: samplesPerCheck, leases: leases, logger: logger)
        do {
            try await store.migrate()
        } catch {
            await store.close()
            guard let failure = error as? StoreError else { throw error }
            throw StoreError(
                failure.code, "cannot \(opening): \(failure.message)",
                underlying: failure.underlying.map(PostgresFailure.init(text:)))
        }
        return store
    }

    /// Closes every connection; the store cannot be used afterwards.
    public func close() async {
        listener.cancel()
        await listener.value
        pool.cancel()
        await pool.value
    }

    /// Holds the connections until graceful shutdown, then closes them: first in `sluice serve`'s service group,
    /// so that it stops last, after everything that writes.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }

    // MARK: - Transactions

    /// Runs `body` in one transaction (READ COMMITTED; the statements lock what they check), mapping database
    /// failures to `StoreError`. What `body` throws rolls the transaction back and passes through as is.
    func write<T: Sendable>(_ what: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction(what, begin: "BEGIN", body)
    }

    /// Runs `body` against one consistent snapshot (a REPEATABLE READ, READ ONLY transaction).
    func read<T: Sendable>(_ what: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction(what, begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
    }

    /// Runs `body`, which sends one statement, with no transaction around it: a statement sees one snapshot and is
    /// atomic on its own, and BEGIN and COMMIT would be two more round trips (a tick's read and record are one
    /// statement each, docs/ha.md "Round trips").
    func single<T: Sendable>(_ what: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction(what, begin: nil, body)
    }

    /// `body` in a transaction (none when `begin` is nil), bounded by `configuration.callTimeout`: while the database
    /// cannot be reached the pool waits for a connection for a minute before it gives up, and a store call must fail
    /// long before that (docs/ha.md "When the database fails"). A call that timed out may still have committed;
    /// callers read again, as after any store failure.
    private func transaction<T: Sendable>(
        _ what: String, begin: PostgresQuery?, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let timeout = configuration.callTimeout
        return try await withoutActuallyEscaping(body) { body in
            // The group awaits both children before it returns, so `body` never outlives this call.
            let escaped = UncheckedSendable(body)
            return try await withThrowingTaskGroup(of: CallOutcome<T>.self) { group in
                group.addTask { .done(try await self.transactionNow(what, begin: begin, escaped.value)) }
                group.addTask {
                    try await Task.sleep(for: timeout)  // the deadline of one store call
                    return .timedOut
                }
                defer { group.cancelAll() }
                guard case .done(let value) = try await group.next() else {
                    throw StoreError(.database, "cannot \(what): PostgreSQL did not answer within \(timeout)")
                }
                return value
            }
        }
    }

    private func transactionNow<T: Sendable>(
        _ what: String, begin: PostgresQuery?, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        do {
            return try await client.withConnection { connection in
                if let begin { try await connection.query(begin, logger: logger) }
                do {
                    let value = try await body(connection)
                    if begin != nil { try await connection.query("COMMIT", logger: logger) }
                    return value
                } catch {
                    // A broken connection cannot roll back; the pool drops it and the server aborts the transaction.
                    if begin != nil { _ = try? await connection.query("ROLLBACK", logger: logger) }
                    // Only the database's failures are the store's; what the caller's code throws passes through.
                    guard error is PSQLError || error is PostgresDecodingError else { throw PassedThrough(error: error) }
                    throw error
                }
            }
        } catch let passed as PassedThrough {
            throw passed.error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw StoreError(.database, "cannot \(what)", underlying: PostgresFailure(error))
        }
    }
}

/// How a bounded store call ended: with its value, or at its deadline.
private enum CallOutcome<T: Sendable>: Sendable {
    case done(T)
    case timedOut
}

/// A value that crosses into a child task which the caller awaits before the value's scope ends.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// An error of the caller's code inside a transaction, carried out of the connection pool untouched.
private struct PassedThrough: Error {
    var error: any Error
}

/// A PostgreSQL failure in words that are safe to log: the kind, the SQLSTATE and the server's own message, never
/// the query or its arguments (they may hold a strategy's source, with provider headers).
struct PostgresFailure: Error, CustomStringConvertible {
    var description: String

    init(_ error: any Error) {
        guard let error = error as? PSQLError else {
            // The pool's and NIO's errors name no query and no argument.
            description = "\(error)"
            return
        }
        var text = "PostgreSQL \(error.code)"
        if let state = error.serverInfo?[.sqlState] { text += " \(state)" }
        if let message = error.serverInfo?[.message] { text += ": \(message)" }
        if error.serverInfo == nil, let underlying = error.underlying { text += " (\(underlying))" }
        description = text
    }

    init(text: String) { description = text }
}

extension PostgresRandomAccessRow {
    /// The value of `column`, decoded.
    func get<T: PostgresDecodable>(_ column: String, _ type: T.Type = T.self) throws -> T {
        try self[column].decode(T.self)
    }
}

extension PostgresConnection {
    /// Runs `query` and returns every row it gave, each readable by column name.
    func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRandomAccessRow] {
        try await self.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
    }

    /// Runs `query` and returns its first row, or nil.
    func row(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRandomAccessRow? {
        try await rows(query, logger: logger).first
    }

    /// Runs `query` for its effect.
    func run(_ query: PostgresQuery, logger: Logger) async throws {
        _ = try await self.query(query, logger: logger).collect()
    }
}

/// A statement built piece by piece (filters that come and go), its arguments bound as `$1`, `$2`...
struct SQLBuilder {
    private(set) var sql: String
    private(set) var binds = PostgresBindings()

    init(_ sql: String) { self.sql = sql }

    /// Appends `text`, with `$N` for `value` where the text holds `?`.
    mutating func append(_ text: String, _ values: any PostgresDynamicTypeEncodable...) {
        var parts = text.split(separator: "?", omittingEmptySubsequences: false)
        precondition(parts.count == values.count + 1, "one value per ? in \(text)")
        sql += parts.removeFirst()
        for (value, part) in zip(values, parts) {
            binds.append(value)
            sql += "$\(binds.count)" + part
        }
    }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
}
