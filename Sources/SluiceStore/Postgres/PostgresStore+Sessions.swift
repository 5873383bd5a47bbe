import PostgresNIO
import SluiceCore

extension PostgresStore {
    /// Keeps `session` (a new one: its digest is 256 random bits).
    public func putSession(_ session: StoredSession) async throws {
        try await write("keep the dashboard session") { connection in
            try await connection.run(
                """
                INSERT INTO sessions (digest, name, role, token_digest, csrf, expires_at)
                VALUES (\(session.digest), \(session.name), \(session.role), \(session.tokenDigest), \(session.csrf),
                        \(session.expires.millisecondsSinceEpoch))
                """, logger: logger)
        }
    }

    /// The session whose cookie hashes to `digest`, expired or not (the caller compares with its clock).
    public func session(digest: String) async throws -> StoredSession? {
        try await single("read the dashboard session") { connection in
            guard
                let row = try await connection.row(
                    "SELECT name, role, token_digest, csrf, expires_at FROM sessions WHERE digest = \(digest)",
                    logger: logger)
            else { return nil }
            return StoredSession(
                digest: digest, name: try row.get("name", String.self), role: try row.get("role", String.self),
                tokenDigest: try row.get("token_digest", String?.self), csrf: try row.get("csrf", String.self),
                expires: Timestamp(millisecondsSinceEpoch: try row.get("expires_at", Int64.self)))
        }
    }

    /// Ends the session whose cookie hashes to `digest` (sign-out, or its token was revoked).
    public func deleteSession(digest: String) async throws {
        try await write("end the dashboard session") { connection in
            try await connection.run("DELETE FROM sessions WHERE digest = \(digest)", logger: logger)
        }
    }

    /// Removes the sessions expired by `now`; returns how many.
    public func pruneSessions(expiredBy now: Timestamp) async throws -> Int {
        try await write("prune expired dashboard sessions") { connection in
            try await connection.rows(
                "DELETE FROM sessions WHERE expires_at <= \(now.millisecondsSinceEpoch) RETURNING digest",
                logger: logger
            ).count
        }
    }
}
