import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PostgreSQL cluster (Debian's `postgresql`) for tests: `initdb` in a temp dir, the postmaster as this
/// process's child on a free loopback port, password (SCRAM) authentication over TCP for the superuser `sluice`,
/// TLS offered with a certificate for `localhost` only (signed by `certificateAuthorityFile`), stopped (fast
/// shutdown) and deleted by `stop()`. Run as root, every PostgreSQL program runs as `nobody` (through
/// `setpriv`), which owns the temp dir: PostgreSQL refuses to run as root.
///
/// The postmaster runs in the foreground under `ManagedProcess` (rather than daemonized by `pg_ctl`) so that it is
/// stopped like Caddy and Prometheus, its log lands beside them, and a test never leaves it behind. Durability is
/// off (`fsync`, `synchronous_commit`, `full_page_writes`): a test cluster is deleted anyway, and it runs faster.
public final class PostgresCluster: Sendable {
    public static let installHint = "apt-get install -y postgresql (scripts/setup does)"
    /// The superuser `initdb` creates; its password is in `passwordFile`.
    public static let user = "sluice"

    public let port: Int
    public let directory: String
    /// A file holding the superuser's password alone (what `sluice.yaml`'s `databasePasswordFile` names).
    public let passwordFile: String
    /// Where `initdb`, `postgres`, `psql`, `pg_dump`... are (`/usr/lib/postgresql/VERSION/bin`).
    public let binDirectory: String
    /// The PEM certificate of the CA that signed the server's certificate (for `sslrootcert`).
    public var certificateAuthorityFile: String { directory + "/ca.crt" }
    /// The postmaster's command line (through `setpriv` when run as root).
    private let command: [String]
    private let managed: Mutex<ManagedProcess>

    private init(
        port: Int, directory: String, passwordFile: String, binDirectory: String, command: [String],
        managed: ManagedProcess
    ) {
        self.port = port
        self.directory = directory
        self.passwordFile = passwordFile
        self.binDirectory = binDirectory
        self.command = command
        self.managed = Mutex(managed)
    }

    public var isRunning: Bool { managed.withLock { $0.isRunning } }

    /// `postgres://sluice@127.0.0.1:PORT/DATABASE?sslmode=disable`: the cluster has no TLS, and no password in a URL.
    public func url(database: String) -> String {
        "postgres://\(Self.user)@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    /// Creates the cluster, starts it and waits (bounded, polling `pg_isready`) until it accepts connections.
    public static func start(timeout: Duration = .seconds(60)) async throws -> PostgresCluster {
        let bin = try binDirectory()
        let directory = try makeTemporaryDirectory("sluice-postgres")
        let owner = try Self.owner()
        let passwordFile = directory + "/password"
        try "\(UUID().uuidString)\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: passwordFile)
        if let owner {
            for path in [directory, passwordFile] where chown(path, owner.uid, owner.gid) != 0 {
                throw SupportError("cannot give \(path) to the unprivileged user: \(String(cString: strerror(errno)))")
            }
        }
        let initdb = try await run(
            Self.launcher(owner), Self.prefix(owner) + [
                bin + "/initdb", "-D", directory + "/data", "-U", user, "--pwfile=" + passwordFile,
                "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
            ], in: directory, timeout: timeout, installHint: installHint)
        guard initdb.status == 0 else {
            throw SupportError("initdb failed (\(initdb.status)):\n\(initdb.stdout)\(initdb.stderr)")
        }
        try await makeCertificates(in: directory, owner: owner)
        let port = try freePort()
        let command =
            [Self.launcher(owner)] + Self.prefix(owner) + [
                bin + "/postgres", "-D", directory + "/data", "-p", "\(port)", "-k", directory,
                "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "fsync=off",
                "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "ssl=on",
                "-c", "ssl_cert_file=\(directory)/server.crt", "-c", "ssl_key_file=\(directory)/server.key",
            ]
        do {
            let managed = try await launch(command, directory: directory, port: port, bin: bin, timeout: timeout)
            return PostgresCluster(
                port: port, directory: directory, passwordFile: passwordFile, binDirectory: bin, command: command,
                managed: managed)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Starts the postmaster and waits (bounded, polling `pg_isready`) until it accepts connections; stops it and
    /// fails with its log when it exits or does not get ready in time.
    private static func launch(
        _ command: [String], directory: String, port: Int, bin: String, timeout: Duration
    ) async throws -> ManagedProcess {
        let managed = try ManagedProcess(
            name: "postgres", executable: command[0], arguments: Array(command.dropFirst()), directory: directory,
            installHint: installHint)
        do {
            try await waitUntil("PostgreSQL to accept connections on 127.0.0.1:\(port)", timeout: timeout) {
                guard managed.isRunning else { throw SupportError("postgres exited") }
                let ready = try await run(
                    bin + "/pg_isready", ["-q", "-h", "127.0.0.1", "-p", "\(port)"], installHint: installHint)
                return ready.status == 0
            }
            guard managed.isRunning else { throw SupportError("postgres exited before accepting connections") }
        } catch {
            let tail = managed.logTail()
            managed.stop(signal: SIGINT, timeout: .seconds(10))
            throw SupportError("\(error)\npostgres log:\n\(tail)")
        }
        return managed
    }

    /// Stops the server (fast shutdown) and keeps the cluster: a database outage, until `startServer`.
    public func stopServer() {
        managed.withLock { $0 }.stop(signal: SIGINT, timeout: .seconds(10))
    }

    /// Starts the server again on the same port and data, and waits until it accepts connections.
    public func startServer(timeout: Duration = .seconds(60)) async throws {
        let started = try await Self.launch(
            command, directory: directory, port: port, bin: binDirectory, timeout: timeout)
        managed.withLock { $0 = started }
    }

    /// Creates a database with a fresh name and returns the name.
    public func createDatabase() async throws -> String {
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try await sql("CREATE DATABASE \(name)", database: "postgres")
        return name
    }

    /// Runs `statement` with `psql` as the superuser (over the cluster's Unix socket) and returns what it printed;
    /// throws with psql's error when it fails.
    @discardableResult
    public func sql(_ statement: String, database: String) async throws -> String {
        let result = try await psql(statement, database: database)
        guard result.status == 0 else {
            throw SupportError("psql failed (\(result.status)) on \(statement): \(result.stderr)")
        }
        return result.stdout
    }

    /// Runs `statement` with `psql` (tuples only, unaligned, stopping at the first error) and returns how it exited.
    public func psql(_ statement: String, database: String) async throws -> CommandResult {
        try await run(
            binDirectory + "/psql",
            [
                "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", directory, "-p", "\(port)", "-U", Self.user,
                "-d", database, "-c", statement,
            ], installHint: Self.installHint)
    }

    /// Stops the postmaster (fast shutdown: SIGINT, then SIGKILL after the grace period) and deletes the cluster.
    public func stop() {
        stopServer()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The postmaster's log, for failure messages.
    public func logTail() -> String { managed.withLock { $0 }.logTail() }

    // MARK: - One cluster per test process

    /// The test process's own cluster, started on first use and stopped when the process exits: `initdb` costs
    /// seconds, a database (`createDatabase`) a fraction of one, so tests share the cluster and each takes a database.
    public static func shared() async throws -> PostgresCluster {
        try await SharedCluster.instance.get()
    }

    /// A CA and a server certificate for the DNS name `localhost` alone (no IP address), so that a client verifying
    /// the name passes through `localhost` and fails through `127.0.0.1`. The key is the server user's, mode 0600.
    private static func makeCertificates(in directory: String, owner: (uid: uid_t, gid: gid_t)?) async throws {
        let openssl = "/usr/bin/openssl"
        let hint = "apt-get install -y openssl (scripts/setup does)"
        try "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n"
            .write(toFile: directory + "/server.ext", atomically: true, encoding: .utf8)
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        let steps: [[String]] = [
            ["req", "-x509"] + curve
                + ["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=sluice-test-ca"],
            ["req"] + curve + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
            ],
        ]
        for step in steps {
            let made = try await run(openssl, step, in: directory, installHint: hint)
            guard made.status == 0 else { throw SupportError("openssl \(step[0]) failed: \(made.stderr)") }
        }
        let key = directory + "/server.key"
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
        if let owner, chown(key, owner.uid, owner.gid) != 0 {
            throw SupportError("cannot give \(key) to the unprivileged user: \(String(cString: strerror(errno)))")
        }
    }

    // MARK: - Binaries and the user they run as

    /// The newest `ROOT/VERSION/bin` holding `initdb` and `postgres` (Debian's layout).
    public static func binDirectory(under root: String = "/usr/lib/postgresql") throws -> String {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        let found = versions.compactMap { version -> (Int, String)? in
            let bin = "\(root)/\(version)/bin"
            guard let number = Int(version), FileManager.default.isExecutableFile(atPath: bin + "/initdb"),
                FileManager.default.isExecutableFile(atPath: bin + "/postgres")
            else { return nil }
            return (number, bin)
        }
        guard let newest = found.max(by: { $0.0 < $1.0 }) else {
            throw SupportError(
                "PostgreSQL not found (no \(root)/VERSION/bin/initdb); install it with: \(installHint)")
        }
        return newest.1
    }

    /// `nobody` when this process runs as root, else nil (the programs run as the current user).
    private static func owner() throws -> (uid: uid_t, gid: gid_t)? {
        guard geteuid() == 0 else { return nil }
        guard let entry = getpwnam("nobody") else {
            throw SupportError("running as root and there is no user `nobody` to run PostgreSQL as")
        }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    private static func launcher(_ owner: (uid: uid_t, gid: gid_t)?) -> String {
        owner == nil ? "/usr/bin/env" : "/usr/bin/setpriv"
    }

    private static func prefix(_ owner: (uid: uid_t, gid: gid_t)?) -> [String] {
        guard let owner else { return [] }
        return ["--reuid=\(owner.uid)", "--regid=\(owner.gid)", "--clear-groups", "--"]
    }
}

/// The lazily started cluster of `PostgresCluster.shared()`, stopped by an `atexit` handler.
private final class SharedCluster: Sendable {
    static let instance = SharedCluster()
    private let state = Mutex<Task<PostgresCluster, any Error>?>(nil)

    func get() async throws -> PostgresCluster {
        let task = state.withLock { current in
            if let current { return current }
            let started = Task { () throws -> PostgresCluster in
                let cluster = try await PostgresCluster.start()
                runningCluster.withLock { $0 = cluster }
                atexit { runningCluster.withLock { $0?.stop() } }
                return cluster
            }
            current = started
            return started
        }
        return try await task.value
    }
}

/// The shared cluster once it runs, for the `atexit` handler (a C function pointer cannot capture it).
private let runningCluster = Mutex<PostgresCluster?>(nil)
