/// The value of a metric provider's header: written in the strategy (`X-Scope-OrgID: shop`), or read when the
/// provider is built from an environment variable (`{fromEnv: PROM_KEY}`) or a file (`{fromFile: /path}`), so a
/// key need not be in the strategy, the store or the API. Its description never shows a written value.
public enum HeaderValue: Sendable, Hashable, Codable, ExpressibleByStringLiteral, CustomStringConvertible {
    case value(String)
    /// The name of an environment variable of the server.
    case fromEnv(String)
    /// The path of a file on the server; its content without surrounding whitespace.
    case fromFile(String)

    public init(stringLiteral value: String) { self = .value(value) }

    /// `<redacted>` for a written value, where the others come from (`fromEnv PROM_KEY`): what may be shown.
    public var description: String {
        switch self {
        case .value: Redaction.hidden
        case .fromEnv(let name): "fromEnv \(name)"
        case .fromFile(let path): "fromFile \(path)"
        }
    }

    /// The value as the strategy document writes it: a string, or a one-key mapping.
    public var document: JSONValue {
        switch self {
        case .value(let text): .string(text)
        case .fromEnv(let name): .object(["fromEnv": .string(name)])
        case .fromFile(let path): .object(["fromFile": .string(path)])
        }
    }

    private enum Key: String, CodingKey {
        case fromEnv
        case fromFile
    }

    // A plain string, as headers were stored before `fromEnv`/`fromFile` existed, or the one-key mapping.
    public init(from decoder: any Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) {
            self = .value(text)
            return
        }
        let container = try decoder.container(keyedBy: Key.self)
        if let name = try container.decodeIfPresent(String.self, forKey: .fromEnv) {
            self = .fromEnv(name)
        } else {
            self = .fromFile(try container.decode(String.self, forKey: .fromFile))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .value(let text):
            var container = encoder.singleValueContainer()
            try container.encode(text)
        case .fromEnv(let name):
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(name, forKey: .fromEnv)
        case .fromFile(let path):
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(path, forKey: .fromFile)
        }
    }
}
