import Crypto
import Foundation
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

    /// Parses and checks a tokens file; errors name the file and the entry.
    public static func parse(_ text: String, file: String) throws -> TokenFile {
        let decoded: TokenFile
        do {
            decoded = try YAMLDecoder().decode(TokenFile.self, from: text)
        } catch {
            throw ConfigError(file: file, message: "not a tokens file (`tokens: [{name, role, sha256}]`): \(error)")
        }
        var names = Set<String>()
        for (index, entry) in decoded.tokens.enumerated() {
            let at = "tokens[\(index)]"
            if entry.name.isEmpty || entry.name.contains(where: { $0.isWhitespace }) {
                throw ConfigError(file: file, message: "\(at).name must be a non-empty word")
            }
            if !names.insert(entry.name).inserted {
                throw ConfigError(file: file, message: "\(at).name \"\(entry.name)\" is listed twice")
            }
            if !TokenHash.isHexDigest(entry.sha256) {
                throw ConfigError(
                    file: file,
                    message: "\(at).sha256 must be 64 hex digits (the SHA-256 of the token; `sluice token hash`)")
            }
        }
        return decoded
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
