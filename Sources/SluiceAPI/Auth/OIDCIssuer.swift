import Foundation
import SluiceCore
import Yams

/// An OIDC issuer whose tokens `sluice serve` accepts (the `oidc:` list of sluice.yaml), e.g. GitHub Actions:
///
/// ```yaml
/// oidc:
///   - issuer: https://token.actions.githubusercontent.com
///     audience: sluice                    # what the workflow asks its token for
///     jwksURL: https://...                # optional: else from the issuer's discovery document
///     caFile: /etc/sluice/issuer-ca.pem   # optional: a private CA for the issuer's HTTPS
///     rules:                              # the first rule whose claims all match gives the role
///       - role: ci
///         claims: {repository: acme/shop, ref: refs/heads/main}
/// ```
public struct OIDCIssuer: Sendable, Hashable {
    /// A rule: every claim named must equal its value (a string; booleans and numbers compare by their JSON text).
    public struct Rule: Sendable, Hashable {
        public var role: Role
        public var claims: [String: String]
        public init(role: Role, claims: [String: String]) {
            self.role = role
            self.claims = claims
        }
    }

    /// The `iss` claim, exactly (an `https://` URL).
    public var issuer: String
    /// The value the `aud` claim must hold.
    public var audience: String
    /// Where the signing keys are; nil: `jwks_uri` of `<issuer>/.well-known/openid-configuration`.
    public var jwksURL: String?
    /// A PEM CA file the issuer's HTTPS is checked against, instead of the system's.
    public var caFile: String?
    public var rules: [Rule]

    public init(issuer: String, audience: String, jwksURL: String? = nil, caFile: String? = nil, rules: [Rule]) {
        self.issuer = issuer
        self.audience = audience
        self.jwksURL = jwksURL
        self.caFile = caFile
        self.rules = rules
    }

    static let keys = ["issuer", "audience", "jwksURL", "caFile", "rules"]

    /// Parses the `oidc:` list of the server config; every error names file, line and column.
    static func parseList(_ node: Node, file: String, resolve: (String) -> String) throws -> [OIDCIssuer] {
        func fail(_ node: Node, _ message: String) -> ConfigError {
            ConfigError(file: file, line: node.mark?.line, column: node.mark?.column, message: message)
        }
        guard let list = node.sequence else {
            throw fail(node, "`oidc` must be a list of issuers {issuer, audience, rules}")
        }
        var seen = Set<String>()
        return try list.enumerated().map { index, item in
            let at = "oidc[\(index)]"
            guard let mapping = item.mapping else { throw fail(item, "\(at) must be a mapping {issuer, audience, rules}") }
            for (key, _) in mapping where !keys.contains(key.scalar?.string ?? "") {
                throw fail(key, "\(at): " + unknownKey("key", key.scalar?.string ?? "?", known: keys))
            }
            func string(_ key: String) throws -> String? {
                guard let value = mapping[key] else { return nil }
                guard let text = value.scalar?.string, !text.isEmpty else {
                    throw fail(value, "\(at).\(key) must be a non-empty string")
                }
                return text
            }
            func httpsURL(_ key: String) throws -> String? {
                guard let text = try string(key) else { return nil }
                guard let url = URL(string: text), url.scheme == "https", url.host?.isEmpty == false else {
                    throw fail(mapping[key]!, "\(at).\(key) must be an https:// URL, got \"\(text)\"")
                }
                return text
            }
            guard let issuer = try httpsURL("issuer") else { throw fail(item, "\(at).issuer (an https:// URL) is required") }
            guard seen.insert(issuer).inserted else { throw fail(mapping["issuer"]!, "\(at).issuer \(issuer) is listed twice") }
            guard let audience = try string("audience") else {
                throw fail(item, "\(at).audience is required (the audience CI requests its token for, e.g. sluice)")
            }
            let caFile = try string("caFile").map(resolve)
            if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
                throw fail(mapping["caFile"]!, "\(at).caFile: cannot read \(caFile)")
            }
            guard let rulesNode = mapping["rules"], let rules = rulesNode.sequence, !rules.isEmpty else {
                throw fail(mapping["rules"] ?? item, "\(at).rules must be a non-empty list of {role, claims}")
            }
            let parsed = try rules.enumerated().map { number, ruleNode in
                let place = "\(at).rules[\(number)]"
                guard let rule = ruleNode.mapping else { throw fail(ruleNode, "\(place) must be a mapping {role, claims}") }
                for (key, _) in rule where !["role", "claims"].contains(key.scalar?.string ?? "") {
                    throw fail(key, "\(place): " + unknownKey("key", key.scalar?.string ?? "?", known: ["role", "claims"]))
                }
                guard let roleNode = rule["role"], let role = roleNode.scalar.flatMap({ Role(rawValue: $0.string) }) else {
                    throw fail(
                        rule["role"] ?? ruleNode,
                        "\(place).role must be one of " + Role.allCases.map(\.rawValue).joined(separator: ", "))
                }
                // A rule without claims would admit every token of the issuer: on GitHub, every repository's.
                guard let claimsNode = rule["claims"], let claims = claimsNode.mapping, !claims.isEmpty else {
                    throw fail(
                        rule["claims"] ?? ruleNode,
                        "\(place).claims must name at least one claim (e.g. repository), or every token of the "
                            + "issuer would get the role")
                }
                var values: [String: String] = [:]
                for (key, value) in claims {
                    guard let name = key.scalar?.string, !name.isEmpty, let text = value.scalar?.string else {
                        throw fail(value, "\(place).claims: each claim must map to a string value")
                    }
                    values[name] = text
                }
                return Rule(role: role, claims: values)
            }
            return OIDCIssuer(
                issuer: issuer, audience: audience, jwksURL: try httpsURL("jwksURL"), caFile: caFile, rules: parsed)
        }
    }
}
