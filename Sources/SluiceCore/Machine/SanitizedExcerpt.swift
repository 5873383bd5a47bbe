/// Text from outside Sluice (a provider's error, a workload's reason, a response body) made fit for an event, a
/// log line or a terminal: surrounding whitespace dropped, control characters escaped (`\n`, `\r`, `\t`, else
/// `\u001B`-style, the escapes JSON, YAML and the CLI's `visibleControls` use; also line/paragraph separators and
/// bidirectional overrides), and at most `limit` characters (Unicode scalars; 200 leaves room for an error with its
/// URL, and bounds junk). A longer text keeps its first two
/// thirds and its end around a `…`: errors tend to say what failed first and the status last
/// (`caddy: ... (HTTP 500)`). Work is bounded by `limit`, not by the text. `decide` passes every provider text
/// through it before it reaches an event or the stored state, so a flapping provider cannot fill the event log
/// with junk or escape codes.
public func sanitizedExcerpt(_ text: some StringProtocol, limit: Int = 200) -> String {
    let scalars = text.unicodeScalars
    guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }), limit > 0
    else { return "" }
    let trimmed = scalars[first...last]
    var head: [String] = []
    var length = 0
    for scalar in trimmed {
        head.append(escaped(scalar))
        length += head[head.count - 1].unicodeScalars.count
        if length > limit { break }
    }
    guard length > limit else { return head.joined() }
    // Too long: whole pieces only (an escape is never split), head first, then the end, with `…` between.
    let budget = limit - 1
    while length > budget * 2 / 3, let piece = head.popLast() { length -= piece.unicodeScalars.count }
    var tail: [String] = []
    for scalar in trimmed.reversed() {
        let piece = escaped(scalar)
        if length + piece.unicodeScalars.count > budget { break }
        length += piece.unicodeScalars.count
        tail.append(piece)
    }
    return head.joined() + "…" + tail.reversed().joined()
}

private func escaped(_ scalar: Unicode.Scalar) -> String {
    switch scalar {
    case "\n": return "\\n"
    case "\r": return "\\r"
    case "\t": return "\\t"
    default: break
    }
    let properties = scalar.properties
    switch properties.generalCategory {
    case .control, .lineSeparator, .paragraphSeparator: break
    default: if !properties.isBidiControl { return String(scalar) }
    }
    let hex = String(scalar.value, radix: 16, uppercase: true)
    return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
}
