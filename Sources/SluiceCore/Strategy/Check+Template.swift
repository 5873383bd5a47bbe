/// `{{token}}` templates in check queries (docs/strategy.md "Checks").
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
        case "le": le
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

    /// `query` with every known token replaced by its value. Inside a PromQL string literal (`"..."` or
    /// `'...'`) the value is escaped as that literal needs (backslash, the quote, line breaks and other
    /// control characters), so no value can end the literal early and add to the query; elsewhere, and
    /// inside a raw `` `...` `` string (which has no escapes), it goes in as it is.
    static func render(_ query: String, _ context: TemplateContext) -> String {
        var out = ""
        var literal = Literal.none
        var rest = query[...]
        while let first = rest.first {
            // `first == "{"` first: a string comparison at every character was half the cost of rendering.
            if first == "{", rest.hasPrefix("{{"), let close = rest.dropFirst(2).firstRange(of: "}}") {
                let token = rest[rest.index(rest.startIndex, offsetBy: 2)..<close.lowerBound].trimmingSpaces()
                if let value = context.value(of: token) {
                    out += literal.escaped(value)
                } else {
                    out += rest[..<close.upperBound]
                }
                rest = rest[close.upperBound...]
                continue
            }
            out.append(first)
            rest = rest.dropFirst()
            switch literal {
            case .none where first == "\"" || first == "'": literal = .quoted(first)
            case .none where first == "`": literal = .raw
            case .none where first == "#": literal = .comment
            case .quoted where first == "\\":
                // An escape: the next character cannot end the literal.
                if let next = rest.first, next != "{" {
                    out.append(next)
                    rest = rest.dropFirst()
                }
            case .quoted(let quote) where first == quote: literal = .none
            case .raw where first == "`": literal = .none
            case .comment where first.isNewline: literal = .none
            default: break
            }
        }
        return out
    }

    /// Where in a PromQL query the renderer is: outside any literal, in a quoted or raw string, in a comment.
    enum Literal: Equatable {
        case none
        case quoted(Character)
        case raw
        case comment

        func escaped(_ value: String) -> String {
            guard case .quoted(let quote) = self else { return value }
            var out = ""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where Character(scalar) == quote: out += "\\" + String(quote)
                case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                    out += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out
        }
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
