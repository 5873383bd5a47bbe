/// `{{token}}` templates in check queries (strategy-v1.md "Query templates").
extension Check {
    /// The query with every `{{token}}` (spaces inside the braces allowed) replaced by its value
    /// from `context`; `{{interval}}` becomes a Go-style duration such as `10s`, fit for a PromQL range.
    public func renderedQuery(_ context: TemplateContext) -> String {
        QueryTemplate.render(query, context)
    }
}

extension TemplateContext {
    /// The text a token (without braces) stands for, or nil for an unknown token.
    public func value(of token: String) -> String? {
        switch token {
        case "name": name
        case "namespace": namespace
        case "stable": stable
        case "canary": canary
        case "version": version
        case "interval": interval.goString
        default: nil
        }
    }
}

/// Finds and replaces `{{...}}` tokens.
enum QueryTemplate {
    /// One `{{...}}` occurrence: its whole text and the token inside, trimmed of spaces.
    struct Token: Equatable {
        var text: Substring
        var name: String
    }

    /// Every token of `query` in order, and the index of a `{{` that is never closed, if any.
    static func scan(_ query: String) -> (tokens: [Token], unclosed: String.Index?) {
        var tokens: [Token] = []
        var rest = query[...]
        while let open = rest.firstRange(of: "{{") {
            guard let close = rest[open.upperBound...].firstRange(of: "}}") else {
                return (tokens, open.lowerBound)
            }
            let inner = rest[open.upperBound..<close.lowerBound]
            let name = inner.trimmingSpaces()
            tokens.append(Token(text: rest[open.lowerBound..<close.upperBound], name: name))
            rest = rest[close.upperBound...]
        }
        return (tokens, nil)
    }

    static func render(_ query: String, _ context: TemplateContext) -> String {
        var out = ""
        var rest = query[...]
        while let open = rest.firstRange(of: "{{"), let close = rest[open.upperBound...].firstRange(of: "}}") {
            out += rest[..<open.lowerBound]
            let token = rest[open.upperBound..<close.lowerBound].trimmingSpaces()
            out += context.value(of: token) ?? String(rest[open.lowerBound..<close.upperBound])
            rest = rest[close.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
