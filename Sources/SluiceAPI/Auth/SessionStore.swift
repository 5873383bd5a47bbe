import Crypto
import Foundation
import SluiceCore
import SluiceStore

/// The dashboard's signed-in browsers (docs/dashboard.md "Sign-in and sessions").
///
/// A session is made once a token is shown to `POST /v1/session`: its id is 32 bytes from the system's CSPRNG,
/// handed to the browser once in an HttpOnly cookie and kept here only as its SHA-256, so a dump of this memory
/// gives no cookie. Each session has its own CSRF token, which every state-changing request made with the cookie
/// must carry in `X-CSRF-Token`. `sluice serve` keeps sessions in its store (SQLite or PostgreSQL), so every
/// replica of an HA install knows every session, a sign-out on one replica ends it on all, and a restart signs
/// nobody out; the store holds the cookie's SHA-256 only, which signs nobody in. Without a store (tests of the
/// API alone) they live in this process's memory, at most `limit` of them.
public final class SessionStore: Sendable {
    /// What a session stands for.
    public struct Session: Sendable, Hashable {
        /// The identity at sign-in; for a static token the role is read again from the tokens file on every request.
        public var identity: Identity
        /// The SHA-256 of the static token signed in with (as in the tokens file), so a revoked or changed token
        /// ends its sessions at once; nil for an OIDC token, whose session lasts `oidcLifetime`.
        public var tokenDigest: String?
        /// Sent in `X-CSRF-Token` by the page with every state-changing request.
        public var csrf: String
        public var expires: Timestamp
    }

    /// How long a session signed in with a static token lasts; then the browser signs in again.
    public static let lifetime: Duration = .seconds(8 * 3600)
    /// How long a session signed in with an OIDC token lasts: such tokens are minted for minutes.
    public static let oidcLifetime: Duration = .seconds(15 * 60)
    /// At most this many sessions are kept by default; the one closest to expiry makes room for a new one.
    public static let defaultLimit = 10_000

    private let sessions = Locked<[String: Session]>([:])
    private let now: @Sendable () -> Timestamp
    private let limit: Int
    /// Where sessions are kept; nil: in `sessions`.
    private let store: (any RolloutStore)?

    public init(
        now: @escaping @Sendable () -> Timestamp = APIServer.systemNow, limit: Int = SessionStore.defaultLimit,
        store: (any RolloutStore)? = nil
    ) {
        self.now = now
        self.limit = limit
        self.store = store
    }

    /// Makes a session for `identity`; returns the id for the cookie (never stored) and the session. With a store,
    /// the sessions expired by now are removed first (an indexed delete, once per sign-in).
    public func create(identity: Identity, tokenDigest: String?) async throws -> (id: String, session: Session) {
        let id = Self.randomToken()
        let lifetime = tokenDigest == nil ? Self.oidcLifetime : Self.lifetime
        let session = Session(
            identity: identity, tokenDigest: tokenDigest, csrf: Self.randomToken(), expires: now() + lifetime)
        let current = now()
        if let store {
            _ = try await store.pruneSessions(expiredBy: current)
            try await store.putSession(
                StoredSession(
                    digest: TokenHash.hex(id), name: identity.name, role: identity.role.rawValue,
                    tokenDigest: tokenDigest, csrf: session.csrf, expires: session.expires))
            return (id, session)
        }
        sessions.withLock { sessions in
            sessions = sessions.filter { current < $0.value.expires }
            if sessions.count >= limit, let oldest = sessions.min(by: { $0.value.expires < $1.value.expires }) {
                sessions[oldest.key] = nil
            }
            sessions[TokenHash.hex(id)] = session
        }
        return (id, session)
    }

    /// The session of the cookie `id`; nil when unknown or expired (an expired one is dropped).
    public func session(id: String) async throws -> Session? {
        let key = TokenHash.hex(id)
        let current = now()
        if let store {
            guard let stored = try await store.session(digest: key) else { return nil }
            guard current < stored.expires, let role = Role(rawValue: stored.role) else {
                try await store.deleteSession(digest: key)
                return nil
            }
            return Session(
                identity: Identity(name: stored.name, role: role), tokenDigest: stored.tokenDigest, csrf: stored.csrf,
                expires: stored.expires)
        }
        return sessions.withLock { sessions in
            guard let session = sessions[key] else { return nil }
            guard current < session.expires else {
                sessions[key] = nil
                return nil
            }
            return session
        }
    }

    /// Ends the session of the cookie `id` (sign-out, or its token was revoked).
    public func remove(id: String) async throws {
        let key = TokenHash.hex(id)
        if let store { return try await store.deleteSession(digest: key) }
        sessions.withLock { $0[key] = nil }
    }

    /// Sessions held in memory now (expired ones included until they are next looked at); 0 with a store.
    public var count: Int { sessions.withLock { $0.count } }

    /// 32 bytes from the system's CSPRNG (swift-crypto's `SymmetricKey`), as 64 lower-case hex digits.
    static func randomToken() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { bytes in bytes.map { String(format: "%02x", $0) }.joined() }
    }
}
