/// Text on its way to a terminal. What the CLI writes itself (the literal parts, its own newlines and cursor
/// moves) stays as written; every interpolated value has its control characters made visible
/// (`visibleControls`), so a server's, a provider's or a strategy author's text cannot move the cursor,
/// retitle the window, ring the bell or forge a line of output.
public struct TerminalText: ExpressibleByStringInterpolation, Sendable, Hashable, CustomStringConvertible {
    /// The text as it goes to the terminal.
    public private(set) var description: String

    public init(stringLiteral value: String) { description = value }
    public init(stringInterpolation: Interpolation) { description = stringInterpolation.text }

    public static func + (lhs: TerminalText, rhs: TerminalText) -> TerminalText {
        var sum = lhs
        sum += rhs
        return sum
    }

    public static func += (lhs: inout TerminalText, rhs: TerminalText) { lhs.description += rhs.description }

    public struct Interpolation: StringInterpolationProtocol, Sendable {
        var text = ""
        public init(literalCapacity: Int, interpolationCount: Int) { text.reserveCapacity(literalCapacity) }
        public mutating func appendLiteral(_ literal: String) { text += literal }
        /// A value: every control character in it is made visible, newlines too.
        public mutating func appendInterpolation(_ value: some Any) {
            text += visibleControls(String(describing: value))
        }
        /// Text already made safe is kept as it is.
        public mutating func appendInterpolation(_ value: TerminalText) { text += value.description }
        /// A block the CLI laid out in lines (a table, a diff, a JSON or YAML document): its newlines stay,
        /// every other control character is made visible.
        public mutating func appendInterpolation(lines value: String) {
            text += visibleControls(value, keepingNewlines: true)
        }
    }
}

/// `text` with every control character (C0 such as NUL, BEL, CR and ESC, DEL, and the C1 range such as CSI)
/// written as a visible `\u001B`-style escape. The escape is also a valid JSON and YAML escape for the same
/// character, so a JSON document passed through stays valid and decodes to what it said.
public func visibleControls(_ text: String, keepingNewlines: Bool = false) -> String {
    func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
    // Unicode scalars, not Characters: "\r\n" is one Character, and its CR must not slip through with the LF.
    guard text.unicodeScalars.contains(where: { isControl($0) && !(keepingNewlines && $0 == "\n") }) else { return text }
    var out = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
        guard isControl(scalar), !(keepingNewlines && scalar == "\n") else {
            out.append(scalar)
            continue
        }
        let hex = String(scalar.value, radix: 16, uppercase: true)
        out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
    }
    return String(out)
}
