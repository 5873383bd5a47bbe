/// "Billion laughs" YAML: anchors whose aliases stand for 9^levels nodes in a few hundred bytes, each
/// written to slip past a text scan for aliases (the guard Sluice had before it counted parse events).
public enum YAMLBomb: String, CaseIterable, Sendable, CustomStringConvertible {
    /// Plain: one level per line, `aN: &aN [*aN-1, ...]`.
    case plain
    /// A quoted `" #"` opens each level's list: a scan that takes `#` after a space for a comment misses the rest.
    case quotedHash
    /// CRLF line endings and a comment after each level.
    case crlfComment
    /// A lone CR ends each line (old Mac style; YAML reads it as a line break) after a leading comment.
    case carriageReturn
    /// A `---x` line (a plain scalar, not a document start) inside each level's list.
    case dashesScalar
    /// The levels split over three documents of at most 27 aliases each; Yams keeps anchors across `---`.
    case acrossDocuments

    public var description: String { rawValue }

    /// The text: 8 levels of 9 aliases (9^8, about 4.3e7 nodes), the last one used as a mapping key (which Yams
    /// hashes in full while composing).
    public var text: String {
        let width = 9
        let levels = 8
        func items(_ level: Int) -> String { Array(repeating: "*a\(level - 1)", count: width).joined(separator: ", ") }
        var lines = ["a0: &a0 [" + Array(repeating: "x", count: width).joined(separator: ", ") + "]"]
        for level in 1...levels {
            switch self {
            case .plain, .crlfComment, .carriageReturn: lines.append("a\(level): &a\(level) [\(items(level))]")
            case .quotedHash: lines.append("a\(level): &a\(level) [\" #\", \(items(level))]")
            case .dashesScalar: lines.append("a\(level): &a\(level) [\(items(level)),\n---x]")
            case .acrossDocuments:
                if level % 3 == 1 && level > 1 { lines.append("---") }
                lines.append("b\(level): &a\(level) [\(items(level))]")
            }
        }
        lines.append("k: {*a\(levels) : 1}")
        switch self {
        case .crlfComment: return lines.map { $0 + "  # level" }.joined(separator: "\r\n") + "\r\n"
        case .carriageReturn: return "# levels of lists\r" + lines.joined(separator: "\r") + "\r"
        default: return lines.joined(separator: "\n") + "\n"
        }
    }
}
