import GRDB
import SluiceCore

/// A dashboard session as the store keeps it (docs/dashboard.md "Sign-in and sessions"): in the store, so that
/// every replica of an HA install knows every session and a sign-out on one ends it on all. The cookie's value is
/// never stored: `digest` is its SHA-256.
public struct StoredSession: Sendable, Hashable {
    /// The SHA-256 of the cookie's value, hex.
    public var digest: String
    /// Who signed in, and the role they had then.
    public var name: String
    public var role: String
    /// The SHA-256 of the static token signed in with; nil for an OIDC token.
    public var tokenDigest: String?
    /// The session's CSRF token: worth nothing without the cookie.
    public var csrf: String
    public var expires: Timestamp

    public init(digest: String, name: String, role: String, tokenDigest: String?, csrf: String, expires: Timestamp) {
        self.digest = digest
        self.name = name
        self.role = role
        self.tokenDigest = tokenDigest
        self.csrf = csrf
        self.expires = expires
    }
}

extension Store {
    /// Keeps `session` (a new one: its digest is 256 random bits).
    public func putSession(_ session: StoredSession) async throws {
        try await write("keep the dashboard session") { db in
            try db.cachedStatement(
                sql: """
                    INSERT INTO sessions (digest, name, role, token_digest, csrf, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """
            ).execute(
                arguments: [
                    session.digest, session.name, session.role, session.tokenDigest, session.csrf,
                    session.expires.millisecondsSinceEpoch,
                ])
        }
    }

    /// The session whose cookie hashes to `digest`, expired or not (the caller compares with its clock).
    public func session(digest: String) async throws -> StoredSession? {
        try await read("read the dashboard session") { db in
            try Row.fetchOne(
                try db.cachedStatement(
                    sql: "SELECT name, role, token_digest, csrf, expires_at FROM sessions WHERE digest = ?"),
                arguments: [digest]
            ).map { row in
                StoredSession(
                    digest: digest, name: row["name"], role: row["role"], tokenDigest: row["token_digest"],
                    csrf: row["csrf"], expires: Timestamp(millisecondsSinceEpoch: row["expires_at"]))
            }
        }
    }

    /// Ends the session whose cookie hashes to `digest` (sign-out, or its token was revoked).
    public func deleteSession(digest: String) async throws {
        try await write("end the dashboard session") { db in
            try db.cachedStatement(sql: "DELETE FROM sessions WHERE digest = ?").execute(arguments: [digest])
        }
    }

    /// Removes the sessions expired by `now`; returns how many.
    public func pruneSessions(expiredBy now: Timestamp) async throws -> Int {
        try await write("prune expired dashboard sessions") { db in
            try db.cachedStatement(sql: "DELETE FROM sessions WHERE expires_at <= ?")
                .execute(arguments: [now.millisecondsSinceEpoch])
            return db.changesCount
        }
    }

    /// The schema of dashboard sessions (before it, sessions lived in the memory of the replica that made them).
    static func migrateSessions(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE sessions (
                    digest TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL,
                    role TEXT NOT NULL,
                    token_digest TEXT,
                    csrf TEXT NOT NULL,
                    expires_at INTEGER NOT NULL
                );
                CREATE INDEX sessions_by_expiry ON sessions (expires_at);
                """
        )
    }
}
