import Crypto
import Foundation
import SluiceHTTP
import _CryptoExtras

/// Checks JWTs from the configured OIDC issuers (CI: GitHub Actions, GitLab CI) and maps their claims to a role.
/// Only RS256 and ES256 signatures are accepted (never `none`, never HMAC, so a public key cannot serve as a
/// shared secret); `iss`, `aud`, `exp` and `nbf` are checked with a minute's leeway. Signing keys come from the
/// issuer's JWKS over HTTPS, are cached, and are fetched again on an unknown `kid` (at most every
/// `refreshInterval`) and when older than `maxKeyAge`. Signatures are checked by swift-crypto.
public final class OIDCVerifier: Sendable {
    /// Why a token was refused; logged (never the token).
    public enum Rejection: String, Sendable, Error {
        case malformed, algorithm, issuer, unknownKey, keysUnavailable, signature, expired, notYetValid, audience,
            subject, noRule
    }

    /// The identity names of OIDC tokens start with this; static token names may not (TokenFile refuses them).
    public static let namePrefix = "oidc:"

    public let issuers: [OIDCIssuer]
    let leeway: TimeInterval
    let refreshInterval: TimeInterval
    let maxKeyAge: TimeInterval
    private let http: any HTTPClient
    private let now: @Sendable () -> Date
    private let caches: [String: KeyCache]

    public init(
        issuers: [OIDCIssuer], http: any HTTPClient, leeway: TimeInterval = 60, refreshInterval: TimeInterval = 30,
        maxKeyAge: TimeInterval = 3600, now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.issuers = issuers
        self.http = http
        self.leeway = leeway
        self.refreshInterval = refreshInterval
        self.maxKeyAge = maxKeyAge
        self.now = now
        caches = Dictionary(uniqueKeysWithValues: issuers.map { ($0.issuer, KeyCache()) })
    }

    /// Whether `token` has a JWT's shape (three dot-separated parts), so it is worth checking here.
    static func looksLikeJWT(_ token: String) -> Bool { token.split(separator: ".", omittingEmptySubsequences: false).count == 3 }

    /// The identity (`oidc:` + subject) and role of `token`, or why it is refused. `issuer` is set once the
    /// token named a configured issuer, for the log.
    public func verify(_ token: String) async -> (result: Result<Identity, Rejection>, issuer: String?) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Self.base64URL(parts[0]), let payloadData = Self.base64URL(parts[1]),
            let signature = Self.base64URL(parts[2]),
            let header = try? JSONDecoder().decode(Header.self, from: headerData),
            let claims = try? JSONDecoder().decode(Claims.self, from: payloadData)
        else { return (.failure(.malformed), nil) }
        guard ["RS256", "ES256"].contains(header.alg), header.crit == nil else { return (.failure(.algorithm), nil) }
        guard let iss = claims.iss, let issuer = issuers.first(where: { $0.issuer == iss }), let cache = caches[iss]
        else { return (.failure(.issuer), nil) }
        let at = now()
        let keys: [JWK]
        do {
            keys = try await cache.keys(
                at: at, wanted: header.kid, refreshInterval: refreshInterval, maxAge: maxKeyAge
            ) { try await self.fetchKeys(issuer) }
        } catch {
            return (.failure(.keysUnavailable), iss)
        }
        let candidates = keys.filter { $0.algorithm == header.alg && (header.kid == nil || $0.kid == header.kid) }
        guard !candidates.isEmpty else { return (.failure(.unknownKey), iss) }
        let signed = Data(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard candidates.contains(where: { $0.verifies(signature, over: signed) }) else {
            return (.failure(.signature), iss)
        }
        let instant = at.timeIntervalSince1970
        guard let exp = claims.exp, instant <= exp + leeway else { return (.failure(.expired), iss) }
        if let nbf = claims.nbf, instant + leeway < nbf { return (.failure(.notYetValid), iss) }
        guard claims.aud?.values.contains(issuer.audience) == true else { return (.failure(.audience), iss) }
        guard let subject = claims.sub, !subject.isEmpty, subject.count <= 256,
            !subject.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { return (.failure(.subject), iss) }
        let texts = (try? JSONDecoder().decode([String: ClaimText].self, from: payloadData)) ?? [:]
        guard let rule = issuer.rules.first(where: { $0.claims.allSatisfy { texts[$0.key]?.text == $0.value } }) else {
            return (.failure(.noRule), iss)
        }
        return (.success(Identity(name: Self.namePrefix + subject, role: rule.role)), iss)
    }

    /// A JWS header: the fields Sluice reads. `crit` present at all is refused (no extension is understood).
    struct Header: Decodable {
        var alg: String
        var kid: String?
        var crit: [String]?
    }

    /// The registered claims Sluice checks.
    struct Claims: Decodable {
        /// `aud`: one string or a list.
        struct Audience: Decodable {
            var values: [String]
            init(from decoder: any Decoder) throws {
                let value = try decoder.singleValueContainer()
                if let list = try? value.decode([String].self) {
                    values = list
                } else {
                    values = [try value.decode(String.self)]
                }
            }
        }
        var iss: String?
        var sub: String?
        var aud: Audience?
        var exp: Double?
        var nbf: Double?
    }

    /// A claim's value as a rule compares it: a string as is, a boolean or number as its JSON text; nil otherwise.
    struct ClaimText: Decodable {
        var text: String?
        init(from decoder: any Decoder) throws {
            let value = try decoder.singleValueContainer()
            if let string = try? value.decode(String.self) {
                text = string
            } else if let bool = try? value.decode(Bool.self) {
                text = bool ? "true" : "false"
            } else if let integer = try? value.decode(Int64.self) {
                text = String(integer)
            } else if let number = try? value.decode(Double.self) {
                text = String(number)
            } else {
                text = nil
            }
        }
    }

    static func base64URL(_ part: Substring) -> Data? {
        var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !text.contains("=") else { return nil }
        text += String(repeating: "=", count: (4 - text.count % 4) % 4)
        return Data(base64Encoded: text)
    }

    // MARK: keys

    /// One verification key of a JWKS.
    struct JWK: @unchecked Sendable {
        var kid: String?
        /// `RS256` or `ES256`.
        var algorithm: String
        var rsa: _RSA.Signing.PublicKey?
        var ec: P256.Signing.PublicKey?

        func verifies(_ signature: Data, over signed: Data) -> Bool {
            if let rsa {
                return rsa.isValidSignature(
                    _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: signed),
                    padding: .insecurePKCS1v1_5)
            }
            if let ec, let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature) {
                return ec.isValidSignature(parsed, for: signed)
            }
            return false
        }

        /// The keys of a JWKS document Sluice can use: RSA (RS256) and EC P-256 (ES256) signing keys; others are
        /// skipped.
        static func parseSet(_ data: Data) -> [JWK]? {
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let keys = object["keys"] as? [[String: Any]]
            else { return nil }
            return keys.compactMap { key in
                if let use = key["use"] as? String, use != "sig" { return nil }
                let kid = key["kid"] as? String
                let alg = key["alg"] as? String
                switch key["kty"] as? String {
                case "RSA":
                    guard alg == nil || alg == "RS256", let n = (key["n"] as? String).flatMap({ base64URL(Substring($0)) }),
                        let e = (key["e"] as? String).flatMap({ base64URL(Substring($0)) }),
                        let rsa = try? _RSA.Signing.PublicKey(n: n, e: e)
                    else { return nil }
                    return JWK(kid: kid, algorithm: "RS256", rsa: rsa)
                case "EC":
                    guard alg == nil || alg == "ES256", key["crv"] as? String == "P-256",
                        let x = (key["x"] as? String).flatMap({ base64URL(Substring($0)) }),
                        let y = (key["y"] as? String).flatMap({ base64URL(Substring($0)) }), x.count == 32, y.count == 32,
                        let ec = try? P256.Signing.PublicKey(rawRepresentation: x + y)
                    else { return nil }
                    return JWK(kid: kid, algorithm: "ES256", ec: ec)
                default:
                    return nil
                }
            }
        }
    }

    /// The issuer's keys: `jwksURL`, or `jwks_uri` from its discovery document, over HTTPS.
    private func fetchKeys(_ issuer: OIDCIssuer) async throws -> [JWK] {
        let tls = TLSOptions(ca: issuer.caFile.map { .file($0) })
        func get(_ url: String) async throws -> Data {
            let response = try await http.execute(
                HTTPRequest(
                    url: url, headers: [("Accept", "application/json")], timeout: .seconds(5),
                    maxResponseBytes: 1 << 20, tls: tls, retry: RetryPolicy(maxAttempts: 2)))
            guard response.status == 200 else { throw Rejection.keysUnavailable }
            return response.body
        }
        var url = issuer.jwksURL
        if url == nil {
            let base = issuer.issuer.hasSuffix("/") ? String(issuer.issuer.dropLast()) : issuer.issuer
            let discovery = try await get(base + "/.well-known/openid-configuration")
            let document = try? JSONSerialization.jsonObject(with: discovery) as? [String: Any]
            guard let found = document?["jwks_uri"] as? String, found.hasPrefix("https://") else {
                throw Rejection.keysUnavailable
            }
            url = found
        }
        guard let keys = JWK.parseSet(try await get(url!)) else { throw Rejection.keysUnavailable }
        return keys
    }
}

/// One issuer's keys, fetched once at a time.
actor KeyCache {
    private var keys: [OIDCVerifier.JWK] = []
    private var fetchedAt: Date?
    private var fetching: Task<[OIDCVerifier.JWK], any Error>?

    /// The cached keys; fetched first when there are none, when they are older than `maxAge`, or when `wanted`
    /// (a `kid`) is not among them and the last fetch is at least `refreshInterval` old.
    func keys(
        at now: Date, wanted: String?, refreshInterval: TimeInterval, maxAge: TimeInterval,
        fetch: @escaping @Sendable () async throws -> [OIDCVerifier.JWK]
    ) async throws -> [OIDCVerifier.JWK] {
        let age = fetchedAt.map { now.timeIntervalSince($0) }
        let missing = wanted.map { kid in !keys.contains { $0.kid == kid } } ?? false
        let stale = age == nil || age! >= maxAge || (missing && age! >= refreshInterval)
        guard stale else { return keys }
        let task = fetching ?? Task { try await fetch() }
        fetching = task
        defer { fetching = nil }
        do {
            keys = try await task.value
            fetchedAt = now
        } catch {
            // Keep what was fetched before; nothing yet: the token cannot be checked.
            if fetchedAt == nil { throw error }
            fetchedAt = now  // rate-limits retries of a failing issuer too
        }
        return keys
    }
}
