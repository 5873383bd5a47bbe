import Crypto
import Foundation
import SluiceCore
import Yams

/// One entry of the tokens file: who, what role, and the SHA-256 of the token (never the token).
public struct TokenEntry: Sendable, Hashable, Codable {
    public var name: String
    public var role: Role
    /// Lower-case hex SHA-256 of the token.
    public var sha256: String

    public init(name: String, role: Role, sha256: String) {
        self.name = name
        self.role = role
        self.sha256 = sha256
    }
}

/// The tokens file: `tokens: [{name, role, sha256}]`.
public struct TokenFile: Sendable, Hashable, Codable {
    public var tokens: [TokenEntry]

    public init(tokens: [TokenEntry]) { self.tokens = tokens }

    /// Parses and checks a tokens file; every error names the file, the line and column, and the entry.
    public static func parse(_ text: String, file: String) throws -> TokenFile {
        let shape = "`tokens: [{name, role, sha256}]`"
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigError(file: file, line: 1, column: 1, message: "the tokens file is empty; it must hold \(shape)")
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch {
            throw syntaxError(error, file: file)
        }
        func fail(_ node: Node, _ message: String) -> ConfigError {
            ConfigError(file: file, line: node.mark?.line, column: node.mark?.column, message: message)
        }
        for (key, _) in root.mapping ?? [:] where key.scalar?.string != "tokens" {
            // A typo of `tokens` (or a stray key beside it); anything else is "not a tokens file" below.
            let name = key.scalar?.string ?? "?"
            if root.mapping?["tokens"] != nil || nearMiss(name, among: ["tokens"]) != nil {
                throw fail(key, unknownKey("key", name, known: ["tokens"]))
            }
        }
        guard let list = root.mapping?["tokens"] else { throw fail(root, "not a tokens file: it must hold \(shape)") }
        guard let sequence = list.sequence else { throw fail(list, "`tokens` must be a list of {name, role, sha256}") }
        var tokens: [TokenEntry] = []
        var names = Set<String>()
        for (index, node) in sequence.enumerated() {
            let at = "tokens[\(index)]"
            guard let entry = node.mapping else { throw fail(node, "\(at) must be a mapping {name, role, sha256}") }
            for (key, _) in entry where !["name", "role", "sha256"].contains(key.scalar?.string ?? "") {
                throw fail(key, "\(at): " + unknownKey("key", key.scalar?.string ?? "?", known: ["name", "role", "sha256"]))
            }
            func field(_ key: String) throws -> (node: Node, text: String) {
                guard let value = entry[key] else { throw fail(node, "\(at).\(key) is required") }
                guard let scalar = value.scalar else { throw fail(value, "\(at).\(key) must be a string") }
                return (value, scalar.string)
            }
            let name = try field("name")
            if name.text.isEmpty || name.text.contains(where: { $0.isWhitespace }) {
                throw fail(name.node, "\(at).name must be a non-empty word")
            }
            if name.text.hasPrefix(OIDCVerifier.namePrefix) {
                throw fail(
                    name.node,
                    "\(at).name \"\(name.text)\" starts with \(OIDCVerifier.namePrefix), which names OIDC token subjects")
            }
            if !names.insert(name.text).inserted {
                throw fail(name.node, "\(at).name \"\(name.text)\" is listed twice")
            }
            let role = try field("role")
            guard let parsedRole = Role(rawValue: role.text) else {
                throw fail(
                    role.node,
                    "\(at).role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(role.text)\"")
            }
            let digest = try field("sha256")
            if !TokenHash.isHexDigest(digest.text) {
                throw fail(
                    digest.node, "\(at).sha256 must be 64 hex digits (the SHA-256 of the token; `sluice token hash`)")
            }
            tokens.append(TokenEntry(name: name.text, role: parsedRole, sha256: digest.text))
        }
        return TokenFile(tokens: tokens)
    }

    /// A YAML syntax error at its line and column, without the snippet of the file Yams adds (the file holds
    /// token digests, and this message reaches logs and `/readyz`).
    private static func syntaxError(_ error: any Error, file: String) -> ConfigError {
        switch error as? YamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            return ConfigError(
                file: file, line: mark.line, column: mark.column,
                message: "not valid YAML: " + problem + (context.map { " " + $0.text } ?? ""))
        case .reader(let problem, _, _, _):
            return ConfigError(file: file, message: "not valid YAML: " + problem)
        default:
            return ConfigError(file: file, message: "not valid YAML")
        }
    }

    /// Reads and parses the tokens file at `path`.
    public static func load(path: String) throws -> TokenFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, message: "cannot read the tokens file")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }
}

/// SHA-256 of tokens, as the tokens file stores them.
public enum TokenHash {
    /// Lower-case hex SHA-256 of `token`.
    public static func hex(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// Whether `text` is 64 hex digits.
    public static func isHexDigest(_ text: String) -> Bool {
        text.utf8.count == 64 && text.allSatisfy { $0.isHexDigit }
    }

    /// Compares two digests in time that depends only on their length, not on where they differ.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.lowercased().utf8)
        let y = Array(b.lowercased().utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in x.indices { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}
