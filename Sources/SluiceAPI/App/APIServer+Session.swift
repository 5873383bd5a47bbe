import Foundation
import HTTPTypes
import Hummingbird
import Logging
import SluiceCore
import SluiceStore

extension APIServer {
    /// The session cookie's name.
    static let sessionCookieName = "sluice_session"
    /// The header a request made with the session cookie carries its CSRF token in.
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!

    /// `POST /v1/session` (sign in with a token in a JSON body), `GET /v1/session` (who the cookie is, and the
    /// CSRF token), `DELETE /v1/session` (sign out).
    func addSessionRoutes(to router: Router<APIContext>) {
        router.post("/v1/session") { request, _ in
            // JSON only: a cross-site HTML form cannot send it, so nobody can be signed in from another site.
            guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
                throw APIError(
                    .badRequest, "sign in with a JSON body {\"token\": ...} (Content-Type: application/json)")
            }
            guard let body = try await Self.decode(SignInRequest.self, from: request) else {
                throw APIError(.badRequest, "a JSON body {token} is required")
            }
            let token = body.token.trimmingCharacters(in: .whitespacesAndNewlines)
            let authorization = "Bearer " + token
            guard !token.isEmpty else { throw APIError(.badRequest, "`token` must not be empty") }
            switch await authenticator.authenticate(authorization: authorization, role: .viewer) {
            case .failure(let failure):
                metrics.recordAuthFailure(failure)
                logger.warning(
                    "dashboard sign-in refused",
                    metadata: ["http.path": "\(request.uri.path)", "auth.failure": "\(failure.rawValue)"])
                throw APIError(.unauthenticated, "the token is not known to this server")
            case .success(let identity):
                let digest = authenticator.staticTokenDigest(authorization: authorization)
                let (id, session) = try await sessionCall {
                    try await sessions.create(identity: identity, tokenDigest: digest)
                }
                logger.info(
                    "dashboard session started",
                    metadata: ["auth.token_name": "\(identity.name)", "auth.role": "\(identity.role)"])
                var response = try Self.json(SessionView(session, now: now()), status: .created)
                response.headers[.setCookie] = sessionCookie(
                    id, maxAge: Int((session.expires - now()).milliseconds / 1000))
                response.headers[.cacheControl] = "no-store"
                return response
            }
        }
        router.get("/v1/session") { request, _ in
            guard let id = Self.sessionCookie(request), let (session, _) = try await currentSession(id) else {
                throw APIError(.unauthenticated, "not signed in (no session, or it has expired): sign in with a token")
            }
            var response = try Self.json(SessionView(session, now: now()))
            response.headers[.cacheControl] = "no-store"
            return response
        }
        router.delete("/v1/session") { request, _ in
            guard let id = Self.sessionCookie(request), let (session, _) = try await currentSession(id) else {
                throw APIError(.unauthenticated, "not signed in (no session, or it has expired)")
            }
            try checkCSRF(request, session: session)
            try await sessionCall { try await sessions.remove(id: id) }
            var response = try Self.json(["signedOut": true])
            response.headers[.setCookie] = sessionCookie("", maxAge: 0)
            return response
        }
    }

    /// The `Set-Cookie` value: HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it),
    /// Path=/ (the API and the pages), Secure when the API is served over TLS.
    func sessionCookie(_ id: String, maxAge: Int) -> String {
        "\(Self.sessionCookieName)=\(id); Path=/; Max-Age=\(max(maxAge, 0)); HttpOnly; SameSite=Strict"
            + (secureCookies ? "; Secure" : "")
    }

    /// The session cookie's value in the request's `Cookie` headers, if any.
    static func sessionCookie(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == sessionCookieName else {
                    continue
                }
                let value = parts[1].trimmingCharacters(in: .whitespaces)
                if !value.isEmpty { return value }
            }
        }
        return nil
    }

    /// The session of cookie `id` with its identity now: a static token's role as the tokens file says it now; a
    /// session whose token is gone from the file is ended.
    func currentSession(_ id: String) async throws -> (session: SessionStore.Session, identity: Identity)? {
        guard var session = try await sessionCall({ try await sessions.session(id: id) }) else { return nil }
        if let digest = session.tokenDigest {
            guard let identity = authenticator.identity(tokenDigest: digest) else {
                try await sessionCall { try await sessions.remove(id: id) }
                return nil
            }
            session.identity = identity
        }
        return (session, session.identity)
    }

    /// A call to the sessions' store: a store that cannot answer is 503, not 401, so the page keeps its session and
    /// says the server is unavailable rather than asking to sign in again.
    func sessionCall<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            throw APIError(.unavailable, "the dashboard's sessions cannot be read or written: \(error.description)")
        }
    }

    /// `authorize` for a request with the session cookie and no Authorization header: the session must exist and
    /// hold `role`, and anything but GET and HEAD must carry the session's CSRF token.
    func authorizeSession(_ id: String, request: Request, role: Role) async throws -> Identity {
        func refuse(_ failure: Authenticator.Failure, _ reason: String, _ error: APIError) -> APIError {
            metrics.recordAuthFailure(failure)
            logger.warning(
                "API request refused",
                metadata: [
                    "http.method": "\(request.method)", "http.path": "\(request.uri.path)", "auth.failure": "\(reason)",
                    "auth.role_needed": "\(role)", "auth.via": "session",
                ])
            return error
        }
        guard let (session, identity) = try await currentSession(id) else {
            throw refuse(
                .unknown, "session", APIError(.unauthenticated, "the session has expired or is unknown: sign in again"))
        }
        guard identity.role.includes(role) else {
            throw refuse(.forbidden, "forbidden", APIError(.forbidden, "this route needs the \(role) role"))
        }
        do {
            try checkCSRF(request, session: session)
        } catch let error as APIError {
            throw refuse(.forbidden, "csrf", error)
        }
        return identity
    }

    /// A state-changing request made with the cookie must carry the session's CSRF token (compared in constant time).
    func checkCSRF(_ request: Request, session: SessionStore.Session) throws {
        guard request.method != .get && request.method != .head else { return }
        guard let sent = request.headers[Self.csrfHeader], TokenHash.constantTimeEqual(sent, session.csrf) else {
            throw APIError(
                .forbidden,
                "a request made with the session cookie must carry its X-CSRF-Token (GET /v1/session gives it)")
        }
    }
}

/// `POST /v1/session`: the token, sent once; the server answers with a session cookie.
public struct SignInRequest: Sendable, Codable {
    public var token: String
    public init(token: String) { self.token = token }
}

/// Who a session is, its CSRF token and when it ends.
public struct SessionView: Sendable, Hashable, Codable {
    public var name: String
    public var role: String
    /// To send in `X-CSRF-Token` with every state-changing request made with the cookie.
    public var csrf: String
    public var expiresAt: String

    init(_ session: SessionStore.Session, now: Timestamp) {
        name = session.identity.name
        role = session.identity.role.rawValue
        csrf = session.csrf
        expiresAt = session.expires.rfc3339
    }
}
