import CLibYAML

/// What composing a YAML text would build, measured on libyaml's event stream before Yams builds it.
///
/// An alias is cheap to compose but stands for its anchor's whole tree, so a few hundred bytes can
/// stand for 10^8 nodes ("billion laughs"); Yams hashes such a tree in full when it is a mapping key,
/// and everything after composing (the reader, `Yams.load`) walks it. The event stream is what the
/// composer reads, so quotes, comments and line breaks (CRLF, a lone CR) count exactly as they will
/// there, and one pass over it costs no more than scanning the text.
public struct YAMLBudget: Sendable {
    /// The most nodes a file may stand for, each alias counted as the tree it repeats. A strategy is a
    /// few hundred; this leaves room for hundreds of strategies in one file.
    public static let maxNodes = 100_000
    /// The most bytes of scalar text a file may stand for, aliases counted likewise (4 MiB: four times
    /// the largest body the API accepts).
    public static let maxScalarBytes = 4 << 20

    /// Where and why a text goes over the budget.
    public struct Excess: Sendable, Hashable {
        public var line: Int
        public var column: Int
        public var message: String
    }

    /// What one anchored node stands for.
    private struct Cost {
        var nodes: Int
        var bytes: Int
    }

    /// The first event of `yaml` at which the nodes or scalar bytes it stands for go over the budget, or
    /// nil. A syntax error stops the count there: the composer reports it, and it never composes past it.
    ///
    /// Anchors stay defined across `---` documents, as they do in Yams' composer (libyaml's own resets them).
    public static func excess(in yaml: String) -> Excess? {
        withParser(yaml, orElse: nil, count)
    }

    /// `body` over a libyaml parser reading `yaml` (UTF-8), or `orElse` when the text is empty or libyaml cannot
    /// start one.
    static func withParser<T>(_ yaml: String, orElse: T, _ body: (inout yaml_parser_t) -> T) -> T {
        var utf8 = Array(yaml.utf8)
        if utf8.isEmpty { return orElse }
        return utf8.withUnsafeMutableBufferPointer { buffer in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { return orElse }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            return body(&parser)
        }
    }

    private static func count(_ parser: inout yaml_parser_t) -> Excess? {
        var anchors: [String: Cost] = [:]
        // Open collections: their anchor and the totals when they started.
        var open: [(anchor: String?, start: Cost)] = []
        var total = Cost(nodes: 0, bytes: 0)
        var aliases = 0
        var event = yaml_event_t()
        while yaml_parser_parse(&parser, &event) == 1 {
            defer { yaml_event_delete(&event) }
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return nil
            case YAML_SCALAR_EVENT:
                let cost = Cost(nodes: 1, bytes: event.data.scalar.length)
                total.nodes += cost.nodes
                total.bytes += cost.bytes
                if let anchor = name(event.data.scalar.anchor) { anchors[anchor] = cost }
            case YAML_ALIAS_EVENT:
                // An undefined alias is the composer's error; until then it is one node.
                let cost = name(event.data.alias.anchor).flatMap { anchors[$0] } ?? Cost(nodes: 1, bytes: 0)
                total.nodes += cost.nodes
                total.bytes += cost.bytes
                aliases += 1
            case YAML_SEQUENCE_START_EVENT:
                open.append((name(event.data.sequence_start.anchor), total))
                total.nodes += 1
            case YAML_MAPPING_START_EVENT:
                open.append((name(event.data.mapping_start.anchor), total))
                total.nodes += 1
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                // Yams defines a collection's anchor when the collection ends, so `&a [*a]` cannot refer to itself.
                if let (anchor, start) = open.popLast(), let anchor {
                    anchors[anchor] = Cost(nodes: total.nodes - start.nodes, bytes: total.bytes - start.bytes)
                }
            default:
                break
            }
            if total.nodes > maxNodes || total.bytes > maxScalarBytes {
                let what = total.nodes > maxNodes
                    ? "more than \(maxNodes) nodes" : "more than \(maxScalarBytes >> 20) MiB of text"
                let limit = total.nodes > maxNodes ? "\(maxNodes) nodes" : "\(maxScalarBytes >> 20) MiB"
                let message = aliases > 0
                    ? "aliases expand this file to \(what); Sluice reads at most \(limit), aliases counted in full"
                    : "this file holds \(what); Sluice reads at most \(limit)"
                return Excess(
                    line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1, message: message)
            }
        }
        return nil
    }

    private static func name(_ anchor: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        anchor.map { String(cString: $0) }
    }
}
