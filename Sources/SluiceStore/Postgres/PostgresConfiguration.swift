import Foundation
import NIOSSL
import PostgresNIO

/// Where the PostgreSQL store is and how to reach it: `sluice.yaml`'s `database` URL
/// (`postgres://USER@HOST:PORT/DATABASE?sslmode=MODE&sslrootcert=FILE`) and `databasePasswordFile`. The password is
/// read from its file when the store opens, so it is in no URL, no config value and no log line.
public struct PostgresConfiguration: Sendable, Hashable {
    /// libpq's `sslmode` values, with libpq's meaning.
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// No TLS.
        case disable
        /// TLS when the server offers it, unverified; else plain (libpq's default).
        case prefer
        /// TLS, unverified.
        case require
        /// TLS, the certificate verified against the roots, the host name not.
        case verifyCA = "verify-ca"
        /// TLS, the certificate and the host name verified: what production should use.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var tls: TLSMode
    /// PEM file of the certificate authorities to trust (`sslrootcert`); the system's roots when nil.
    public var rootCertificateFile: String?
    /// A file holding the password alone (a trailing newline is ignored); none when nil (trust, peer, certificate).
    public var passwordFile: String?
    /// How long one store call may take, waiting for a connection included, before it fails with a database error.
    public var callTimeout: Duration

    public init(
        host: String, port: Int = 5432, user: String, database: String, tls: TLSMode = .prefer,
        rootCertificateFile: String? = nil, passwordFile: String? = nil, callTimeout: Duration = .seconds(10)
    ) {
        self.callTimeout = callTimeout
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.tls = tls
        self.rootCertificateFile = rootCertificateFile
        self.passwordFile = passwordFile
    }

    /// `user@host:port/database`: how logs and errors name the store (no password, no query).
    public var displayName: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    /// Parses a `postgres://` (or `postgresql://`) URL. The error says what is wrong without repeating the URL,
    /// which may hold a password by mistake.
    public static func parse(url text: String, passwordFile: String? = nil) throws(PostgresURLError) -> Self {
        guard let components = URLComponents(string: text), let scheme = components.scheme else {
            throw PostgresURLError("`database` must be a URL like postgres://USER@HOST:PORT/DATABASE")
        }
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw PostgresURLError("`database` must be a postgres:// URL, not \(scheme)://")
        }
        guard components.password == nil else {
            throw PostgresURLError(
                "`database` must not hold a password (it would show wherever the URL does): put it in a file and "
                    + "name that file in `databasePasswordFile`")
        }
        guard let user = components.user, !user.isEmpty else {
            throw PostgresURLError("`database` names no user: postgres://USER@HOST:PORT/DATABASE")
        }
        guard let host = components.host, !host.isEmpty else {
            throw PostgresURLError("`database` names no host: postgres://USER@HOST:PORT/DATABASE")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw PostgresURLError("`database` names no database: postgres://USER@HOST:PORT/DATABASE")
        }
        var configuration = Self(
            host: host, port: components.port ?? 5432, user: user, database: database, passwordFile: passwordFile)
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                    let modes = TLSMode.allCases.map(\.rawValue).joined(separator: ", ")
                    throw PostgresURLError("`database`: sslmode must be one of \(modes)")
                }
                configuration.tls = mode
            case "sslrootcert":
                guard let file = item.value, !file.isEmpty else {
                    throw PostgresURLError("`database`: sslrootcert must name a PEM file")
                }
                configuration.rootCertificateFile = file
            case "password":
                throw PostgresURLError(
                    "`database` must not hold a password: name a file holding it in `databasePasswordFile`")
            default:
                throw PostgresURLError("`database`: unknown parameter \(item.name) (known: sslmode, sslrootcert)")
            }
        }
        return configuration
    }

    /// The configuration of one connection (the first, which tells at once what is wrong) and of the pool, with the
    /// password read from `passwordFile` now.
    func connectionConfigurations() throws -> (
        first: PostgresConnection.Configuration, pool: PostgresClient.Configuration
    ) {
        let password = try readPassword()
        let tls = try tlsConfiguration()
        let first = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database,
            tls: try tls.map { configuration -> PostgresConnection.Configuration.TLS in
                let context = try NIOSSLContext(configuration: configuration)
                return self.tls == .prefer ? .prefer(context) : .require(context)
            } ?? .disable)
        var pool = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password, database: database,
            tls: tls.map { self.tls == .prefer ? .prefer($0) : .require($0) } ?? .disable)
        pool.options.maximumConnections = 10
        return (first, pool)
    }

    private func readPassword() throws -> String? {
        guard let passwordFile else { return nil }
        guard let data = FileManager.default.contents(atPath: passwordFile) else {
            throw StoreError(.database, "cannot read the database password file \(passwordFile)")
        }
        var text = String(decoding: data, as: UTF8.self)
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        return text
    }

    /// NIOSSL's settings for `tls`, nil for `disable`.
    private func tlsConfiguration() throws -> TLSConfiguration? {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch tls {
        case .disable: return nil
        case .prefer, .require: configuration.certificateVerification = .none
        case .verifyCA: configuration.certificateVerification = .noHostnameVerification
        case .verifyFull: configuration.certificateVerification = .fullVerification
        }
        if let rootCertificateFile {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificateFile))
            } catch {
                throw StoreError(.database, "cannot read the database's root certificates \(rootCertificateFile)")
            }
        }
        return configuration
    }
}

/// A `database` URL that cannot be used, and why (without the URL).
public struct PostgresURLError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
