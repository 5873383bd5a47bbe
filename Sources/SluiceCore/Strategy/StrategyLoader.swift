import Yams

/// Reads strategy files: YAML (one or more `---` documents; JSON is YAML too) into validated
/// `Strategy` values, collecting every error with its position rather than stopping at the first.
public enum StrategyLoader {
    /// The `apiVersion` this version of Sluice reads.
    public static let apiVersion = "sluice.dev/v1"
    /// The `kind` of a strategy document.
    public static let kind = "Strategy"

    /// Every strategy in `yaml` and every error; `file` is the name errors carry (a path, or `-`).
    ///
    /// A document with any error yields no strategy; the others still do. A YAML syntax error ends
    /// the reading at that point (the documents before it are still checked).
    public static func load(yaml: String, file: String) -> StrategyLoadResult {
        if let excess = YAMLBudget.excess(in: yaml) {
            return StrategyLoadResult(errors: [
                StrategyError(
                    code: .invalidValue, file: file, line: excess.line, column: excess.column, path: "",
                    message: excess.message)
            ])
        }
        let composed = compose(yaml, file: file)
        let reader = StrategyReader(file: file, source: yaml, placeholders: composed.placeholders)
        var result = StrategyLoadResult()
        var seen: [StrategyKey: Int] = [:]
        let documents = composed.roots.enumerated().filter {
            !($0.element.scalar != nil && $0.element.tag.rawValue == Tag.Name.null.rawValue)
        }
        if documents.isEmpty, composed.errors.isEmpty {
            reader.report(.missingKey, line: 1, column: 1, "", "no strategy document in this file")
        }
        let crossAliases = documentEvents(yaml).crossAliases
        var aliasErrors: [StrategyError] = []
        for (index, root) in documents {
            let refused = crossAliases.filter { $0.document == index }.map { crossAliasError($0, file: file) }
            aliasErrors += refused
            guard let (strategy, position, nameNode) = reader.readStrategy(root), refused.isEmpty else { continue }
            if let line = seen[strategy.key] {
                reader.report(
                    .conflict, at: nameNode, "metadata.name",
                    "strategy \(strategy.key) is already defined in this file at line \(line)"
                )
                continue
            }
            seen[strategy.key] = position.line
            result.strategies.append(strategy)
            result.positions.append(position)
        }
        result.errors = (reader.errors + composed.errors + aliasErrors).sorted(by: StrategyError.byPosition)
        if result.errors.count > maxErrors {
            let last = result.errors[maxErrors - 1]
            result.errors = Array(result.errors.prefix(maxErrors))
            result.errors.append(
                StrategyError(
                    code: .invalidValue, file: file, line: last.line, column: last.column, path: "",
                    message: "too many errors; stopped after \(maxErrors)"
                ))
        }
        return result
    }

    /// The strategies of `yaml`, or every error of the file in one `StrategyValidationError`.
    public static func loadValid(yaml: String, file: String) throws(StrategyValidationError) -> [Strategy] {
        let result = load(yaml: yaml, file: file)
        guard result.errors.isEmpty else { throw StrategyValidationError(errors: result.errors) }
        return result.strategies
    }

    /// The strategy of a file that must hold exactly one document.
    public static func loadOne(yaml: String, file: String) throws(StrategyValidationError) -> Strategy {
        try loadOneLocated(yaml: yaml, file: file).strategy
    }

    /// `loadOne` with where its document starts (the API points there when the name is not the URL's): the one
    /// place that says a text must hold exactly one strategy document.
    public static func loadOneLocated(yaml: String, file: String) throws(StrategyValidationError)
        -> (strategy: Strategy, position: SourcePosition)
    {
        let result = load(yaml: yaml, file: file)
        guard result.errors.isEmpty else { throw StrategyValidationError(errors: result.errors) }
        guard result.strategies.count == 1 else {
            throw StrategyValidationError(errors: [
                StrategyError(
                    code: .invalidValue, file: file, line: 1, column: 1, path: "",
                    message: "expected exactly one strategy document, found \(result.strategies.count)"
                )
            ])
        }
        return (result.strategies[0], result.positions[0])
    }

    /// Past this many errors a file is surely not a strategy; the rest are dropped.
    static let maxErrors = 500

    /// Each duplicate key costs one more composition of the whole text (see `compose`); past this many
    /// bytes composed for one file, its remaining duplicates are one error rather than minutes of work.
    static let maxComposedBytes = 8 << 20

    /// YAML 1.2 core-schema scalars: only `true`/`false` are booleans (not `yes`, `on`, ...), and no
    /// timestamps or merge keys, so `on:` is a key and a date-like value stays a string.
    static let resolver: Resolver = {
        // The pattern is a literal; it cannot fail to compile.
        let bools = try! Resolver.Rule(.bool, "^(?:true|True|TRUE|false|False|FALSE)$")  // swiftlint:disable:this force_try
        return Resolver.default.replacing(bools).removing(.timestamp).removing(.merge).removing(.value)
    }()

    /// The composed documents. Duplicate keys make Yams stop, so each first occurrence is renamed in
    /// the text to a placeholder of the same length (columns stay put) and the text composed again;
    /// the reader reports the duplicate from the tree and goes on checking the rest.
    static func compose(_ yaml: String, file: String) -> (roots: [Node], placeholders: [String: String], errors: [StrategyError]) {
        var text = yaml
        var placeholders: [String: String] = [:]
        let rounds = min(maxErrors, max(1, maxComposedBytes / max(yaml.utf8.count, 1)))
        for round in 0..<rounds {
            var roots: [Node] = []
            do {
                var documents = try Yams.compose_all(yaml: text, resolver)
                while let root = documents.next() { roots.append(root) }
                if let error = documents.error { throw error }
                return (roots, placeholders, [])
            } catch YamlError.duplicatedKeysInMapping(let duplicates, let context) {
                let key = duplicates.first ?? ""
                if let renamed = rename(key: key, at: context.mark, in: text, round: round) {
                    text = renamed.text
                    placeholders[renamed.placeholder] = key
                    continue
                }
                let error = StrategyError(
                    code: .duplicateKey, file: file, line: max(context.mark.line, 1),
                    column: max(context.mark.column, 1), path: "", message: "duplicate key \(StrategyRules.quoted(key))"
                )
                return (roots, placeholders, [error])
            } catch {
                return (roots, placeholders, [syntaxError(error, file: file)])
            }
        }
        let error = StrategyError(
            code: .duplicateKey, file: file, line: 1, column: 1, path: "",
            message: "too many duplicate keys: Sluice reports at most \(rounds) in a file of \(yaml.utf8.count) bytes"
        )
        return ([], placeholders, [error])
    }

    /// `text` with the plain or quoted scalar `key` at `mark` replaced by a same-length placeholder.
    private static func rename(key: String, at mark: Mark, in text: String, round: Int)
        -> (text: String, placeholder: String)?
    {
        let keyScalars = Array(key.unicodeScalars)
        guard !keyScalars.isEmpty, mark.line >= 1, mark.column >= 1,
              let first = Unicode.Scalar(0xE000 + UInt32(round % 0x100)),
              let fill = Unicode.Scalar(0xE100 + UInt32(round / 0x100))
        else { return nil }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.unicodeScalars) }
        guard mark.line <= lines.count else { return nil }
        var line = lines[mark.line - 1]
        var start = mark.column - 1
        if start < line.count, line[start] == "\"" || line[start] == "'" { start += 1 }
        guard start + keyScalars.count <= line.count, Array(line[start..<start + keyScalars.count]) == keyScalars
        else { return nil }
        let placeholder = [first] + Array(repeating: fill, count: keyScalars.count - 1)
        line.replaceSubrange(start..<start + keyScalars.count, with: placeholder)
        lines[mark.line - 1] = line
        var view = String.UnicodeScalarView()
        for (index, scalars) in lines.enumerated() {
            if index > 0 { view.append("\n") }
            view.append(contentsOf: scalars)
        }
        var placeholderText = String.UnicodeScalarView()
        placeholderText.append(contentsOf: placeholder)
        return (String(view), String(placeholderText))
    }

    private static func syntaxError(_ error: any Error, file: String) -> StrategyError {
        var line = 1, column = 1
        var message = "not valid YAML"
        if let yamlError = error as? YamlError {
            switch yamlError {
            case .scanner(let context, let problem, let mark, _),
                .parser(let context, let problem, let mark, _),
                .composer(let context, let problem, let mark, _):
                (line, column) = (mark.line, mark.column)
                message = "not valid YAML: " + problem + (context.map { " " + $0.text } ?? "")
            case .reader(let problem, _, _, _):
                message = "not valid YAML: " + problem
            default:
                break
            }
        }
        return StrategyError(
            code: .syntax, file: file, line: max(line, 1), column: max(column, 1), path: "", message: message
        )
    }
}
