import CLibYAML
import Yams

/// One document of a strategy file as its own text: what `sluice apply` sends, one `PUT` a document.
public struct StrategySourceDocument: Sendable, Hashable {
    /// The line of the file the text starts on (1-based): a line of the text is line `firstLine - 1 + n` of the file.
    public var firstLine: Int
    /// The document's lines as libyaml reads it: from its `---` (or its first node) through its `...` (or to the
    /// line before the next document); ends with a newline.
    public var text: String
    /// `metadata.namespace`/`metadata.name`, when they can be read.
    public var key: StrategyKey?
    /// Why there is no key (the first error reading `metadata`, positioned in the file).
    public var keyError: StrategyError?
}

/// A file split into its documents, and what keeps a part of it from being one.
public struct StrategySourceDocuments: Sendable, Hashable {
    /// The documents, in file order (empty documents left out, as `load` leaves them out).
    public var documents: [StrategySourceDocument]
    /// Errors of the file, not of one document: too much for the budget, a YAML syntax error (the reading ends
    /// there; the documents before it are kept), no document at all, a strategy defined twice.
    public var errors: [StrategyError]
}

extension StrategyLoader {
    /// `yaml` cut into its documents as YAML cuts it, each with its own text and key, for a client that sends
    /// them one at a time (`sluice apply`) and points its errors back into the file.
    ///
    /// Where a document starts and ends is libyaml's word (its document start and end events, from the libyaml
    /// Yams composes with), so `--- # the second one` starts a document as `---` does, and the documents are
    /// the ones `load` reads: the i-th document's events are the i-th composed root's.
    public static func documents(yaml: String, file: String) -> StrategySourceDocuments {
        if let excess = YAMLBudget.excess(in: yaml) {
            let error = StrategyError(
                code: .invalidValue, file: file, line: excess.line, column: excess.column, path: "",
                message: excess.message)
            return StrategySourceDocuments(documents: [], errors: [error])
        }
        let composed = compose(yaml, file: file)
        // Only a syntax error ends the file; a duplicate key is an error of its document, the server's to report.
        var errors = composed.errors.filter { $0.code != .duplicateKey }
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        let events = documentEvents(yaml)
        var documents: [StrategySourceDocument] = []
        var seen: [StrategyKey: Int] = [:]
        var found = 0
        for (index, (root, span)) in zip(composed.roots, events.lines).enumerated() {
            if root.scalar != nil, root.tag.rawValue == Tag.Name.null.rawValue { continue }
            found += 1
            let crossAliases = events.crossAliases.filter { $0.document == index }
            if !crossAliases.isEmpty {
                errors += crossAliases.map { crossAliasError($0, file: file) }
                continue
            }
            let line = root.mark?.line ?? span.lowerBound
            var text = lines[(span.lowerBound - 1)..<min(span.upperBound, lines.count)].joined(separator: "\n")
            if !text.hasSuffix("\n") { text += "\n" }
            let first = span.lowerBound
            let reader = StrategyReader(file: file, source: yaml, placeholders: composed.placeholders)
            var document = StrategySourceDocument(firstLine: first, text: text)
            if let (key, nameNode) = reader.readKey(root) {
                if let earlier = seen[key] {
                    reader.report(
                        .conflict, at: nameNode, "metadata.name",
                        "strategy \(key) is already defined in this file at line \(earlier)")
                    if let conflict = reader.errors.last { errors.append(conflict) }
                    continue
                }
                seen[key] = line
                document.key = key
            } else {
                document.keyError =
                    reader.errors.first { $0.path.hasPrefix("metadata") } ?? reader.errors.first
                    ?? StrategyError(
                        code: .missingKey, file: file, line: line, column: root.mark?.column ?? 1, path: "metadata.name",
                        message: "metadata.name is required")
            }
            documents.append(document)
        }
        if found == 0, errors.isEmpty {
            errors.append(
                StrategyError(
                    code: .missingKey, file: file, line: 1, column: 1, path: "", message: "no strategy document in this file"
                ))
        }
        return StrategySourceDocuments(documents: documents, errors: errors.sorted(by: StrategyError.byPosition))
    }

    /// What libyaml's events say about a text's documents: the lines each one spans and the aliases that name an
    /// anchor of an earlier document.
    struct DocumentEvents {
        /// The lines (1-based, inclusive) of each document read to its end, in order: from its document start
        /// event's line to its end event's, that line left out when the end is the next document's `---` or the end
        /// of the text (the event then sits in column 1 of a line the document does not reach).
        var lines: [ClosedRange<Int>] = []
        /// Aliases to an anchor that only an earlier document defines: YAML 1.2 scopes an anchor to its document
        /// (libyaml's composer resets them), but Yams keeps them across, so `load` refuses these itself; and a
        /// document sent alone (`sluice apply`) could not resolve them.
        var crossAliases: [(document: Int, line: Int, column: Int, anchor: String)] = []
    }

    /// One pass over `yaml`'s events (no tree is built); stops at a syntax error.
    static func documentEvents(_ yaml: String) -> DocumentEvents {
        YAMLBudget.withParser(yaml, orElse: DocumentEvents()) { parser in
            var found = DocumentEvents()
            var start = 1
            var earlier: Set<String> = [], own: Set<String> = []
            var event = yaml_event_t()
            while yaml_parser_parse(&parser, &event) == 1 {
                defer { yaml_event_delete(&event) }
                var anchor: UnsafeMutablePointer<yaml_char_t>?
                switch event.type {
                case YAML_DOCUMENT_START_EVENT:
                    start = Int(event.start_mark.line) + 1
                    earlier.formUnion(own)
                    own = []
                case YAML_DOCUMENT_END_EVENT:
                    let end = Int(event.end_mark.line) + (event.end_mark.column == 0 ? 0 : 1)
                    found.lines.append(start...max(start, end))
                case YAML_STREAM_END_EVENT:
                    return found
                case YAML_SCALAR_EVENT: anchor = event.data.scalar.anchor
                case YAML_SEQUENCE_START_EVENT: anchor = event.data.sequence_start.anchor
                case YAML_MAPPING_START_EVENT: anchor = event.data.mapping_start.anchor
                case YAML_ALIAS_EVENT:
                    if let name = event.data.alias.anchor.map({ String(cString: $0) }), !own.contains(name),
                       earlier.contains(name)
                    {
                        found.crossAliases.append(
                            (found.lines.count, Int(event.start_mark.line) + 1, Int(event.start_mark.column) + 1, name))
                    }
                default:
                    break
                }
                if let anchor { own.insert(String(cString: anchor)) }
            }
            return found
        }
    }

    /// The error for an alias to an earlier document's anchor.
    static func crossAliasError(_ alias: (document: Int, line: Int, column: Int, anchor: String), file: String)
        -> StrategyError
    {
        StrategyError(
            code: .unknownReference, file: file, line: alias.line, column: alias.column, path: "",
            message: "alias *\(alias.anchor) names an anchor of an earlier document; an anchor belongs to its own"
                + " document (YAML 1.2): define it again in this one")
    }
}
