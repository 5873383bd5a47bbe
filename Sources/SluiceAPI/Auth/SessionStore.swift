import Crypto
import Foundation
import SluiceCore

/// The dashboard's signed-in browsers (docs/dashboard.md "Sign-in and sessions").
///
/// A session is made once a token is shown to `POST /v1/session`: its id is 32 bytes from the system's CSPRNG,
/// handed to the browser once in an HttpOnly cookie and kept here only as its SHA-256, so a dump of this memory
/// gives no cookie. Each session has its own CSRF token, which every state-changing request made with the cookie
/// must carry in `X-CSRF-Token`. Sessions live in the memory of the replica that made them: a restart signs
/// everyone out, which costs a sign-in and keeps no credential on disk.
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

    public init(now: @escaping @Sendable () -> Timestamp = APIServer.systemNow, limit: Int = SessionStore.defaultLimit) {
        self.now = now
        self.limit = limit
    }

    /// Makes a session for `identity`; returns the id for the cookie (never stored) and the session.
    public func create(identity: Identity, tokenDigest: String?) -> (id: String, session: Session) {
        let id = Self.randomToken()
        let lifetime = tokenDigest == nil ? Self.oidcLifetime : Self.lifetime
        let session = Session(
            identity: identity, tokenDigest: tokenDigest, csrf: Self.randomToken(), expires: now() + lifetime)
        let current = now()
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
    public func session(id: String) -> Session? {
        let key = TokenHash.hex(id)
        let current = now()
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
    public func remove(id: String) {
        let key = TokenHash.hex(id)
        sessions.withLock { $0[key] = nil }
    }

    /// Sessions held now (expired ones included until they are next looked at).
    public var count: Int { sessions.withLock { $0.count } }

    /// 32 bytes from the system's CSPRNG (swift-crypto's `SymmetricKey`), as 64 lower-case hex digits.
    static func randomToken() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { bytes in bytes.map { String(format: "%02x", $0) }.joined() }
    }
}
