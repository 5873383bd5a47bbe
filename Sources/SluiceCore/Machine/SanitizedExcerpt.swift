/// Text from outside Sluice (a provider's error, a workload's reason, a response body) made fit for an event, a
/// log line or a terminal: surrounding whitespace dropped, control characters escaped (`\n`, `\r`, `\t`, else
/// `\u001B`-style, the escapes JSON, YAML and the CLI's `visibleControls` use; also line/paragraph separators and
/// bidirectional overrides), and at most `limit` characters (Unicode scalars), ending in `…` when cut. `decide` passes every provider text through it before it reaches
/// an event or the stored state, so a flapping provider cannot fill the event log with junk or escape codes.
public func sanitizedExcerpt(_ text: some StringProtocol, limit: Int = 120) -> String {
    let scalars = text.unicodeScalars
    guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }), limit > 0
    else { return "" }
    var pieces: [String] = []
    var length = 0
    for scalar in scalars[first...last] {
        let piece = escaped(scalar)
        length += piece.unicodeScalars.count
        pieces.append(piece)
        if length > limit { break }
    }
    guard length > limit else { return pieces.joined() }
    // Cut whole pieces (an escape is never split) until the ellipsis fits.
    while length > limit - 1, let piece = pieces.popLast() { length -= piece.unicodeScalars.count }
    return pieces.joined() + "…"
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
