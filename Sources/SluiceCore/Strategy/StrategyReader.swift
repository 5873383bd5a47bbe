import Yams

/// Walks one file's composed YAML nodes, checking types and keys at each node and collecting
/// errors with their positions. Each typed read returns nil after reporting when the node is wrong,
/// so the caller simply skips what it cannot build and carries on.
final class StrategyReader {
    let file: String
    /// Placeholder key -> the key it replaced (the first of a duplicated pair; see `compose`).
    let placeholders: [String: String]
    /// The file's lines as Unicode scalars, to find a template token inside a query.
    private let lines: [[Unicode.Scalar]]
    private(set) var errors: [StrategyError] = []

    init(file: String, source: String, placeholders: [String: String]) {
        self.file = file
        self.placeholders = placeholders
        self.lines = source.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.unicodeScalars) }
    }

    // MARK: Reporting

    func report(_ code: StrategyError.Code, at node: Node?, _ path: String, _ message: String) {
        report(code, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1, path, message)
    }

    /// True once the file has so many errors that reading on is pointless (loops stop early).
    var isSaturated: Bool { errors.count > StrategyLoader.maxErrors }

    func report(_ code: StrategyError.Code, line: Int, column: Int, _ path: String, _ message: String) {
        guard !isSaturated else { return }
        errors.append(
            StrategyError(
                code: code, file: file, line: max(line, 1), column: max(column, 1), path: path, message: message
            ))
    }

    /// The position of the `occurrence`-th (0-based) `text` at or after `node`'s start, or the
    /// node's own position when the text cannot be found verbatim (escapes in a quoted scalar).
    func position(of text: Substring, occurrence: Int, in node: Node) -> (line: Int, column: Int) {
        let origin = (line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
        let needle = Array(text.unicodeScalars)
        guard !needle.isEmpty, origin.line >= 1, origin.line <= lines.count else { return origin }
        var remaining = occurrence
        for lineIndex in (origin.line - 1)..<min(lines.count, origin.line - 1 + 10_000) {
            let line = lines[lineIndex]
            var start = lineIndex == origin.line - 1 ? max(origin.column - 1, 0) : 0
            while start + needle.count <= line.count {
                if line[start] == needle[0], Array(line[start..<start + needle.count]) == needle {
                    if remaining == 0 { return (lineIndex + 1, start + 1) }
                    remaining -= 1
                    start += needle.count
                } else {
                    start += 1
                }
            }
        }
        return origin
    }

    // MARK: Structure

    /// A mapping's entries after checking that every key is a known string and none repeats.
    struct Fields {
        let node: Node
        let path: String
        var values: [String: Node] = [:]
        var keys: [String: Node] = [:]
        /// Known keys that an unknown key was taken for ("did you mean"); not reported missing again.
        var suggested: Set<String> = []

        /// The value of `key`, or nil when it is absent or null.
        subscript(key: String) -> Node? {
            guard let value = values[key], !Self.isNull(value) else { return nil }
            return value
        }

        /// `path.key`.
        func path(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

        static func isNull(_ node: Node) -> Bool { node.scalar != nil && node.tagName == .null }
    }

    /// `node` as a mapping whose keys must be among `known`; reports what `namedEntries` reports and
    /// an unknown key (with a near-miss suggestion), which is then ignored.
    func mapping(_ node: Node, _ path: String, known: [String]) -> Fields? {
        guard let entries = namedEntries(node, path) else { return nil }
        var fields = Fields(node: node, path: path)
        for (key, keyNode, value) in entries {
            guard known.contains(key) else {
                if let near = StrategyRules.suggestion(for: key, among: known) {
                    fields.suggested.insert(near)
                    report(.unknownKey, at: keyNode, fields.path(key), "unknown key \(StrategyRules.quoted(key)); did you mean \"\(near)\"?")
                } else {
                    report(
                        .unknownKey, at: keyNode, fields.path(key),
                        "unknown key \(StrategyRules.quoted(key)); expected \(StrategyRules.alternatives(known))"
                    )
                }
                continue
            }
            fields.keys[key] = keyNode
            fields.values[key] = value
        }
        return fields
    }

    /// `node` as a mapping of string keys, in order: reports a non-mapping, a non-scalar key and a
    /// duplicate key (at its second occurrence; the last value wins).
    func namedEntries(_ node: Node, _ path: String) -> [(key: String, keyNode: Node, value: Node)]? {
        guard case .mapping(let mapping) = node else {
            report(.wrongType, at: node, path, "expected a mapping, got \(describe(node))")
            return nil
        }
        var entries: [(key: String, keyNode: Node, value: Node)] = []
        var seen: [String: Int] = [:]
        for (keyNode, value) in mapping where !isSaturated {
            guard let raw = keyNode.scalar?.string else {
                report(.wrongType, at: keyNode, path, "a key must be a string, got \(describe(keyNode))")
                continue
            }
            let key = placeholders[raw] ?? raw
            if let firstIndex = seen[key] {
                let line = entries[firstIndex].keyNode.mark?.line ?? 1
                report(
                    .duplicateKey, at: keyNode, path.isEmpty ? key : path + "." + key,
                    "duplicate key \(StrategyRules.quoted(key)) (first at line \(line))"
                )
                entries[firstIndex].value = value
                continue
            }
            seen[key] = entries.count
            entries.append((key, keyNode, value))
        }
        return entries
    }

    /// The value of a required key; reports it missing (at the mapping) or null (at the key).
    func required(_ fields: Fields, _ key: String) -> Node? {
        if let value = fields[key] { return value }
        if let keyNode = fields.keys[key] {
            report(.missingKey, at: keyNode, fields.path(key), "a value is required")
        } else if !fields.suggested.contains(key) {
            report(.missingKey, at: fields.node, fields.path, "missing required key \"\(key)\"")
        }
        return nil
    }

    func sequence(_ node: Node, _ path: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            report(.wrongType, at: node, path, "expected a list, got \(describe(node))")
            return nil
        }
        // Past the error limit, items are not read (an alias-built list may be long).
        return isSaturated ? [] : Array(sequence)
    }

    /// `.some(nil)` when the key is absent, nil when `read` failed (and reported), else the value.
    func optional<T>(_ node: Node?, _ read: (Node) -> T?) -> T?? {
        guard let node else { return .some(nil) }
        guard let value = read(node) else { return nil }
        return .some(value)
    }

    // MARK: Scalars

    /// A string; `showingValue: false` keeps a wrongly typed value out of the error (a header's may be a key).
    func string(_ node: Node, _ path: String, expected: String = "a string", showingValue: Bool = true) -> String? {
        guard let scalar = node.scalar, node.tagName == .str else {
            let described = describe(node)
            // "an integer (12345)" without "(12345)"
            let got = showingValue ? described : described.split(separator: " (", maxSplits: 1).first.map(String.init) ?? ""
            report(.wrongType, at: node, path, "expected \(expected), got \(got)")
            return nil
        }
        return scalar.string
    }

    /// A string that must pass `rule` (which returns the problem, or nil).
    func string(_ node: Node, _ path: String, rule: (String) -> String?) -> String? {
        guard let value = string(node, path) else { return nil }
        if let problem = rule(value) {
            report(.invalidValue, at: node, path, problem)
            return nil
        }
        return value
    }

    func integer(_ node: Node, _ path: String, in range: ClosedRange<Int>) -> Int? {
        guard node.scalar != nil, node.tagName == .int else {
            report(.wrongType, at: node, path, "expected an integer, got \(describe(node))")
            return nil
        }
        guard let value = node.int, range.contains(value) else {
            let bound = range.upperBound == Int.max
                ? "at least \(range.lowerBound)" : "between \(range.lowerBound) and \(range.upperBound)"
            report(.invalidValue, at: node, path, "must be \(bound), got \(node.scalar?.string ?? "")")
            return nil
        }
        return value
    }

    func number(_ node: Node, _ path: String) -> Double? {
        guard node.scalar != nil, node.tagName == .int || node.tagName == .float else {
            report(.wrongType, at: node, path, "expected a number, got \(describe(node))")
            return nil
        }
        guard let value = node.tagName == .int ? node.int.map(Double.init) : node.float, value.isFinite else {
            report(.invalidValue, at: node, path, "must be a finite number, got \(node.scalar?.string ?? "")")
            return nil
        }
        return value
    }

    func bool(_ node: Node, _ path: String) -> Bool? {
        guard node.scalar != nil, node.tagName == .bool, let value = node.bool else {
            report(.wrongType, at: node, path, "expected true or false, got \(describe(node))")
            return nil
        }
        return value
    }

    /// A Go-style duration of at least `minimum`.
    func duration(_ node: Node, _ path: String, minimum: Duration = .zero) -> Duration? {
        let example = "a duration such as 90s, 30m or 1h30m"
        guard let text = string(node, path, expected: example) else { return nil }
        guard let value = Duration(go: text) else {
            report(
                .invalidValue, at: node, path,
                "\(StrategyRules.quoted(text)) is not a duration: use a number and a unit (ms, s, m, h), e.g. 90s, 30m, 1h30m"
            )
            return nil
        }
        if value < minimum {
            report(.invalidValue, at: node, path, "must be at least \(minimum.goString), got \(text)")
            return nil
        }
        return value
    }

    /// A mapping of strings to strings (labels).
    func stringMap(_ node: Node, _ path: String) -> [String: String]? {
        stringMap(node, path) { string($0, $1) }
    }

    /// A mapping of strings to what `read` makes of each value (given the value and its path).
    func stringMap<Value>(_ node: Node, _ path: String, _ read: (Node, String) -> Value?) -> [String: Value]? {
        guard let entries = namedEntries(node, path) else { return nil }
        var map: [String: Value] = [:]
        var ok = true
        for entry in entries {
            guard let value = read(entry.value, path + "." + entry.key) else {
                ok = false
                continue
            }
            map[entry.key] = value
        }
        return ok ? map : nil
    }

    /// `a mapping`, `a list`, `an integer`, ... for "expected X, got Y".
    func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            switch node.tagName {
            case .str: return "a string (\(StrategyRules.quoted(scalar.string)))"
            case .int: return "an integer (\(scalar.string))"
            case .float: return "a number (\(scalar.string))"
            case .bool: return "a boolean (\(scalar.string))"
            case .null: return "null"
            default: return "a value tagged \(node.tagName.rawValue)"
            }
        }
    }
}

extension Node {
    /// The resolved tag's name (`Tag.name` itself is internal to Yams).
    fileprivate var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}
