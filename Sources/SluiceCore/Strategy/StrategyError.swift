/// One problem in a strategy file, with the position of the offending YAML node and its field path.
///
/// `description` is compiler style, `file:line:column: error: path: message`, so editors and CI
/// logs can jump to it. The API returns the same fields as 422 `details`.
public struct StrategyError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    /// What kind of problem it is; the message says the specifics.
    public enum Code: String, Sendable, Hashable, Codable {
        /// The file could not be read.
        case unreadable
        /// Not well-formed YAML; nothing after this point in the file was checked.
        case syntax
        /// The same key twice in one mapping.
        case duplicateKey
        /// A key the format does not define.
        case unknownKey
        /// A required key is absent.
        case missingKey
        /// A value of the wrong YAML type (a string where a number belongs, ...).
        case wrongType
        /// A value of the right type that breaks a rule (range, format, order, ...).
        case invalidValue
        /// A reference to something not declared (a provider, a template token, an event type).
        case unknownReference
        /// Two settings that cannot go together (a router and a target, hold and pause, ...).
        case conflict
    }

    public var code: Code
    public var file: String
    /// 1-based line of the offending node.
    public var line: Int
    /// 1-based column (in Unicode scalars) of the offending node.
    public var column: Int
    /// The field path, e.g. `spec.stages[2].weight`; empty for errors about the file itself.
    public var path: String
    public var message: String

    public init(code: Code, file: String, line: Int, column: Int, path: String, message: String) {
        self.code = code
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    /// `file:line:column: error: path: message`.
    public var description: String {
        let location = "\(file):\(line):\(column): error: "
        return path.isEmpty ? location + message : location + path + ": " + message
    }

    /// Orders errors by position in the file.
    static func byPosition(_ a: StrategyError, _ b: StrategyError) -> Bool {
        (a.file, a.line, a.column, a.path) < (b.file, b.line, b.column, b.path)
    }
}

/// Every strategy a file defines and every error it has.
public struct StrategyLoadResult: Sendable, Hashable {
    /// The documents that passed validation, in file order (callers that want all or nothing use
    /// `StrategyLoader.loadValid`).
    public var strategies: [Strategy]
    /// Where each strategy's document starts, parallel to `strategies` (for messages about it).
    public var positions: [SourcePosition]
    /// Every error of the file, sorted by line and column.
    public var errors: [StrategyError]

    public init(strategies: [Strategy] = [], positions: [SourcePosition] = [], errors: [StrategyError] = []) {
        self.strategies = strategies
        self.positions = positions
        self.errors = errors
    }

    /// True when the file has no error at all.
    public var isValid: Bool { errors.isEmpty }
}

/// A line and column in a strategy file, both 1-based.
public struct SourcePosition: Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }
    public var description: String { "\(file):\(line):\(column)" }
}

/// Every error of a file that failed validation (thrown by `StrategyLoader.loadValid`).
public struct StrategyValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// At least one error, sorted by position.
    public var errors: [StrategyError]
    public init(errors: [StrategyError]) { self.errors = errors }
    /// One compiler-style line per error.
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
