import Crypto
import Foundation
import InMemoryLogging
import Logging
import SluiceAPI
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing
import _CryptoExtras

/// A signing key of a test issuer: RS256 or ES256, with its JWK.
struct TestSigner: @unchecked Sendable {
    let kid: String
    let rsa: _RSA.Signing.PrivateKey?
    let ec: P256.Signing.PrivateKey?
    var alg: String { rsa != nil ? "RS256" : "ES256" }

    static func rs256(_ kid: String) throws -> TestSigner {
        TestSigner(kid: kid, rsa: try _RSA.Signing.PrivateKey(keySize: .bits2048), ec: nil)
    }
    static func es256(_ kid: String) -> TestSigner { TestSigner(kid: kid, rsa: nil, ec: P256.Signing.PrivateKey()) }

    var jwk: [String: Any] {
        if let rsa {
            let primitives = try! rsa.publicKey.getKeyPrimitives()
            return [
                "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64url(primitives.modulus),
                "e": b64url(primitives.publicExponent),
            ]
        }
        let raw = ec!.publicKey.rawRepresentation
        return [
            "kty": "EC", "kid": kid, "crv": "P-256", "use": "sig", "x": b64url(raw.prefix(32)),
            "y": b64url(raw.suffix(32)),
        ]
    }

    /// A compact JWS of `claims`; `header` entries replace the defaults (alg, kid, typ).
    func sign(_ claims: [String: Any], header extra: [String: Any] = [:]) throws -> String {
        var header: [String: Any] = ["alg": alg, "kid": kid, "typ": "JWT"]
        header.merge(extra) { _, new in new }
        let input = b64url(try JSONSerialization.data(withJSONObject: header)) + "."
            + b64url(try JSONSerialization.data(withJSONObject: claims))
        let signature: Data
        if let rsa {
            signature = try rsa.signature(for: SHA256.hash(data: Data(input.utf8)), padding: .insecurePKCS1v1_5)
                .rawRepresentation
        } else {
            signature = try ec!.signature(for: Data(input.utf8)).rawRepresentation
        }
        return input + "." + b64url(signature)
    }
}

func b64url(_ data: some DataProtocol) -> String {
    Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

/// A time a test moves by hand.
final class TestNow: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = Date(timeIntervalSince1970: 1_900_000_000)
    var value: Date {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// An HTTPS issuer on loopback: discovery document and JWKS served from the server's folder.
struct TestIssuer {
    let server: LoopbackHTTPServer
    let fixtures: TLSFixtures
    var issuer: String { server.baseURL + "/files/issuer" }

    init() async throws {
        fixtures = try TLSFixtures()
        server = try await LoopbackHTTPServer(tls: fixtures)
        try FileManager.default.createDirectory(
            atPath: server.directory + "/issuer/.well-known", withIntermediateDirectories: true)
        let discovery: [String: Any] = ["issuer": issuer, "jwks_uri": server.baseURL + "/files/jwks.json"]
        try JSONSerialization.data(withJSONObject: discovery).write(
            to: URL(fileURLWithPath: server.directory + "/issuer/.well-known/openid-configuration"))
    }

    func publish(_ signers: [TestSigner]) throws {
        try JSONSerialization.data(withJSONObject: ["keys": signers.map(\.jwk)]).write(
            to: URL(fileURLWithPath: server.directory + "/jwks.json"), options: .atomic)
    }

    /// How often the JWKS was fetched.
    func fetches() async throws -> Int {
        let response = try await CurlClient().execute(
            HTTPRequest(
                url: server.baseURL + "/count?key=files/jwks.json", tls: TLSOptions(ca: .file(fixtures.caCertificate))))
        return Int(String(decoding: response.body, as: UTF8.self)) ?? -1
    }

    var config: OIDCIssuer {
        OIDCIssuer(
            issuer: issuer, audience: "sluice", caFile: fixtures.caCertificate,
            rules: [
                .init(role: .ci, claims: ["repository": "acme/shop", "ref": "refs/heads/main"]),
                .init(role: .viewer, claims: ["repository_owner": "acme"]),
            ])
    }
}

@Suite("OIDC tokens for CI")
struct OIDCTests {
    static let subject = "repo:acme/shop:ref:refs/heads/main"

    static func claims(_ issuer: String, at now: Date, _ changes: [String: Any] = [:]) -> [String: Any] {
        var claims: [String: Any] = [
            "iss": issuer, "aud": "sluice", "sub": subject, "repository": "acme/shop", "repository_owner": "acme",
            "ref": "refs/heads/main", "iat": Int(now.timeIntervalSince1970) - 10,
            "nbf": Int(now.timeIntervalSince1970) - 10, "exp": Int(now.timeIntervalSince1970) + 300,
        ]
        claims.merge(changes) { _, new in new }
        return claims
    }

    @Test("valid RS256 and ES256 tokens map to the role of the first matching rule; the name is oidc:subject")
    func validTokens() async throws {
        let issuer = try await TestIssuer()
        let rsa = try TestSigner.rs256("rsa-1")
        let ec = TestSigner.es256("ec-1")
        try issuer.publish([rsa, ec])
        let now = TestNow()
        let verifier = OIDCVerifier(issuers: [issuer.config], http: try CurlClient(), now: { now.value })
        for signer in [rsa, ec] {
            let token = try signer.sign(Self.claims(issuer.issuer, at: now.value))
            let identity = try await verifier.verify(token).result.get()
            #expect(identity == Identity(name: "oidc:" + Self.subject, role: .ci))
        }
        // Another repository of the owner: the second rule. An audience list holding ours is accepted.
        let other = try rsa.sign(
            Self.claims(issuer.issuer, at: now.value, ["repository": "acme/web", "aud": ["other", "sluice"]]))
        #expect(try await verifier.verify(other).result.get().role == .viewer)
        // Within the minute's leeway of exp and nbf.
        let late = try ec.sign(Self.claims(issuer.issuer, at: now.value, ["exp": now.value.timeIntervalSince1970 - 30]))
        #expect((try? await verifier.verify(late).result.get()) != nil)
        #expect(try await issuer.fetches() == 1, "the keys are cached")
    }

    @Test(
        "tokens refused, and why",
        arguments: [
            ("expired", OIDCVerifier.Rejection.expired),
            ("not yet valid", .notYetValid),
            ("wrong audience", .audience),
            ("no audience", .audience),
            ("wrong issuer", .issuer),
            ("no exp", .expired),
            ("tampered payload", .signature),
            ("signed by another key with a known kid", .signature),
            ("alg none", .algorithm),
            ("HS256 with the public key as secret", .algorithm),
            ("crit header", .algorithm),
            ("no rule matches", .noRule),
            ("not a JWT", .malformed),
        ])
    func refused(_ name: String, _ expected: OIDCVerifier.Rejection) async throws {
        let issuer = try await TestIssuer()
        let rsa = try TestSigner.rs256("rsa-1")
        try issuer.publish([rsa])
        let now = TestNow()
        let verifier = OIDCVerifier(issuers: [issuer.config], http: try CurlClient(), now: { now.value })
        let t = now.value.timeIntervalSince1970
        let claims = { (changes: [String: Any]) in Self.claims(issuer.issuer, at: now.value, changes) }
        let token: String
        switch name {
        case "expired": token = try rsa.sign(claims(["exp": t - 61]))
        case "not yet valid": token = try rsa.sign(claims(["nbf": t + 120]))
        case "wrong audience": token = try rsa.sign(claims(["aud": "someone-else"]))
        case "no audience": token = try rsa.sign(claims([:]).filter { $0.key != "aud" })
        case "wrong issuer": token = try rsa.sign(claims(["iss": "https://token.actions.githubusercontent.com"]))
        case "no exp": token = try rsa.sign(claims([:]).filter { $0.key != "exp" })
        case "tampered payload":
            let good = try rsa.sign(claims([:])).split(separator: ".")
            let forged = b64url(try JSONSerialization.data(withJSONObject: claims(["repository": "acme/shop-fork"])))
            token = "\(good[0]).\(forged).\(good[2])"
        case "signed by another key with a known kid":
            token = try TestSigner.rs256("rsa-1").sign(claims([:]))
        case "alg none":
            let parts = try rsa.sign(claims([:]), header: ["alg": "none"]).split(separator: ".")
            token = "\(parts[0]).\(parts[1])."
        case "HS256 with the public key as secret":
            let header = b64url(try JSONSerialization.data(withJSONObject: ["alg": "HS256", "kid": "rsa-1"]))
            let payload = b64url(try JSONSerialization.data(withJSONObject: claims([:])))
            let secret = try #require(rsa.jwk["n"] as? String)
            let mac = HMAC<SHA256>.authenticationCode(
                for: Data("\(header).\(payload)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
            token = "\(header).\(payload).\(b64url(Data(mac)))"
        case "crit header": token = try rsa.sign(claims([:]), header: ["crit": ["exp"]])
        case "no rule matches":
            token = try rsa.sign(claims(["repository": "mallory/shop", "repository_owner": "mallory"]))
        default: token = "not-a-jwt"
        }
        let (result, _) = await verifier.verify(token)
        #expect(throws: expected) { try result.get() }
    }

    @Test("an unknown kid fetches the keys again, at most every 30 s; the new key is then accepted")
    func keyRotation() async throws {
        let issuer = try await TestIssuer()
        let old = try TestSigner.rs256("2026-old")
        let new = TestSigner.es256("2026-new")
        try issuer.publish([old])
        let now = TestNow()
        let verifier = OIDCVerifier(issuers: [issuer.config], http: try CurlClient(), now: { now.value })
        #expect((try? await verifier.verify(try old.sign(Self.claims(issuer.issuer, at: now.value))).result.get()) != nil)
        #expect(try await issuer.fetches() == 1)

        let rotated = try new.sign(Self.claims(issuer.issuer, at: now.value))
        await #expect(throws: OIDCVerifier.Rejection.unknownKey) { try await verifier.verify(rotated).result.get() }
        #expect(try await issuer.fetches() == 1, "fetched less than 30 s ago: not again")

        try issuer.publish([old, new])
        now.value += 31
        let fresh = try new.sign(Self.claims(issuer.issuer, at: now.value))
        #expect(try await verifier.verify(fresh).result.get().name == "oidc:" + Self.subject)
        #expect(try await issuer.fetches() == 2)
        // Many unknown kids in a row cost one fetch per interval.
        for index in 0..<5 {
            let stranger = try TestSigner.es256("unknown-\(index)").sign(Self.claims(issuer.issuer, at: now.value))
            await #expect(throws: OIDCVerifier.Rejection.unknownKey) { try await verifier.verify(stranger).result.get() }
        }
        #expect(try await issuer.fetches() == 2)
    }

    @Test("the issuer's HTTPS is checked: without its CA the keys cannot be fetched")
    func untrustedIssuer() async throws {
        let issuer = try await TestIssuer()
        let rsa = try TestSigner.rs256("rsa-1")
        try issuer.publish([rsa])
        var config = issuer.config
        config.caFile = nil
        let verifier = OIDCVerifier(issuers: [config], http: try CurlClient())
        let token = try rsa.sign(Self.claims(issuer.issuer, at: Date()))
        await #expect(throws: OIDCVerifier.Rejection.keysUnavailable) { try await verifier.verify(token).result.get() }
    }

    @Test("through the API: the actor of a started rollout is oidc:subject; no token in any log line")
    func throughTheAPI() async throws {
        let issuer = try await TestIssuer()
        let rsa = try TestSigner.rs256("rsa-1")
        try issuer.publish([rsa])
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "oidc") { _ in logs }
        logger.logLevel = .trace
        let verifier = OIDCVerifier(issuers: [issuer.config], http: try CurlClient())
        let authenticator = Authenticator(entries: TestTokens.entries, oidc: verifier, logger: logger)
        let good = try rsa.sign(Self.claims(issuer.issuer, at: Date()))
        let expired = try rsa.sign(Self.claims(issuer.issuer, at: Date(), ["exp": Date().timeIntervalSince1970 - 3600]))
        let viewerOnly = try rsa.sign(Self.claims(issuer.issuer, at: Date(), ["repository": "acme/web"]))
        let stranger = try rsa.sign(Self.claims(issuer.issuer, at: Date(), ["repository": "x/y", "repository_owner": "x"]))
        try await withAPIServer(authenticator: authenticator, logger: logger) { url, backend, _ in
            let started = try await send(
                "POST", url, "/v1/rollouts", token: good, body: Data(#"{"strategy":"shop/checkout","version":"v2"}"#.utf8))
            #expect(started.status == 201, "\(started.text)")
            #expect(backend.eventLog.last?.actor == "oidc:" + Self.subject)
            let refused = try await send(
                "POST", url, "/v1/rollouts", token: expired,
                body: Data(#"{"strategy":"shop/checkout","version":"v3"}"#.utf8))
            #expect(refused.status == 401)
            #expect(try await send("POST", url, "/v1/rollouts", token: viewerOnly, body: Data("{}".utf8)).status == 403)
            #expect(try await send("GET", url, "/v1/strategies", token: viewerOnly).status == 200)
            #expect(try await send("GET", url, "/v1/strategies", token: stranger).status == 403)
        }
        let said = logs.entries.map { "\($0.level) \($0.message) \($0.metadata)" }.joined(separator: "\n")
        #expect(said.contains("oidc.reason"), "\(said)")
        for token in [good, expired, viewerOnly, stranger] {
            #expect(!said.contains(token))
            #expect(!said.contains(String(token.split(separator: ".")[2])))
        }
    }

    @Test("sluice serve with oidc: in sluice.yaml: the CLI with a CI token is let in, an expired one refused, no token logged")
    func throughServe() async throws {
        let issuer = try await TestIssuer()
        let ec = TestSigner.es256("ec-1")
        try issuer.publish([ec])
        let server = try await ServeProcess.start(
            config: """
                oidc:
                  - issuer: \(issuer.issuer)
                    audience: sluice
                    caFile: \(issuer.fixtures.caCertificate)
                    rules:
                      - role: viewer
                        claims: {repository: acme/shop}

                """)
        defer { server.stop() }
        let good = try ec.sign(Self.claims(issuer.issuer, at: Date()))
        let expired = try ec.sign(Self.claims(issuer.issuer, at: Date(), ["exp": Date().timeIntervalSince1970 - 3600]))
        for (token, name) in [(good, "good"), (expired, "expired")] {
            try token.write(toFile: server.directory + "/\(name).jwt", atomically: true, encoding: .utf8)
        }
        let accepted = try await runSluice(["status", "--server", server.url, "--token-file", server.directory + "/good.jwt"])
        #expect(accepted.status == 0, "\(accepted.stderr)")
        let refused = try await runSluice(
            ["status", "--server", server.url, "--token-file", server.directory + "/expired.jwt"])
        #expect(refused.status == 3 && refused.stderr.contains("401"), "\(refused.stderr)")
        let log = server.process.logTail(100_000)
        #expect(log.contains("OIDC token refused"), "\(log)")
        for token in [good, expired] {
            #expect(!log.contains(String(token.split(separator: ".")[2])))
            #expect(!log.contains(String(token.split(separator: ".")[1])))
        }
    }

    @Test("a static token may not be named like an OIDC subject")
    func reservedPrefix() throws {
        let text = "tokens:\n- {name: \"oidc:repo:acme/shop\", role: ci, sha256: \(String(repeating: "a", count: 64))}\n"
        let error = #expect(throws: ConfigError.self) { try TokenFile.parse(text, file: "/t.yaml") }
        #expect(error?.message.contains("starts with oidc:") == true, "\(String(describing: error))")
    }

    @Test(
        "oidc settings in sluice.yaml say what is wrong and where",
        arguments: [
            ("oidc: {}", "`oidc` must be a list"),
            ("oidc:\n- {issuer: http://issuer.example, audience: s, rules: [{role: ci, claims: {a: b}}]}", "must be an https:// URL"),
            ("oidc:\n- {issuer: https://i.example, rules: [{role: ci, claims: {a: b}}]}", "audience is required"),
            ("oidc:\n- {issuer: https://i.example, audience: s, rules: [{role: ci}]}", "must name at least one claim"),
            ("oidc:\n- {issuer: https://i.example, audience: s, rules: [{role: boss, claims: {a: b}}]}", "role must be one of"),
            ("oidc:\n- {issuer: https://i.example, audience: s, rules: []}", "rules must be a non-empty list"),
            ("oidc:\n- {issuer: https://i.example, audiense: s, rules: [{role: ci, claims: {a: b}}]}", "did you mean `audience`"),
        ])
    func badConfig(_ yaml: String, _ message: String) throws {
        let directory = try makeTemporaryDirectory("oidc-config")
        try "tokens: []\n".write(toFile: directory + "/tokens.yaml", atomically: true, encoding: .utf8)
        let error = #expect(throws: ConfigError.self) {
            try ServerConfig.parse("tokensFile: tokens.yaml\n" + yaml, file: "/x/sluice.yaml", baseDirectory: directory)
        }
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        #expect(error?.line != nil)
    }

    @Test("a GitHub Actions issuer parses from sluice.yaml")
    func goodConfig() throws {
        let directory = try makeTemporaryDirectory("oidc-config")
        try "tokens: []\n".write(toFile: directory + "/tokens.yaml", atomically: true, encoding: .utf8)
        let config = try ServerConfig.parse(
            """
            tokensFile: tokens.yaml
            oidc:
              - issuer: https://token.actions.githubusercontent.com
                audience: sluice
                rules:
                  - role: ci
                    claims: {repository: acme/shop, ref: refs/heads/main}
            """, file: "/x/sluice.yaml", baseDirectory: directory)
        #expect(
            config.oidc == [
                OIDCIssuer(
                    issuer: "https://token.actions.githubusercontent.com", audience: "sluice",
                    rules: [.init(role: .ci, claims: ["repository": "acme/shop", "ref": "refs/heads/main"])])
            ])
    }
}
