import Yams

/// `value` as a YAML document with numbers as people write them (`30`, `25.4`, `0.9`), not as Yams' encoder
/// writes doubles (`3e+1`, `2.54e+1`): what `sluice status -o yaml` and `sluice rollout get -o yaml` print.
public func yamlDocument(_ value: some Encodable) throws -> String {
    let text = try YAMLEncoder().encode(value)
    guard let node = try Yams.compose(yaml: text) else { return text }
    return try Yams.serialize(node: plainNumbers(node))
}

/// Rewrites every plain (unquoted) scalar in scientific notation as a plain decimal. A string that only looks
/// like a number is quoted by the encoder, so it is left alone.
func plainNumbers(_ node: Node) -> Node {
    switch node {
    case .scalar(var scalar):
        if scalar.style == .plain, scalar.string.contains(where: { $0 == "e" || $0 == "E" }),
            let value = Double(scalar.string), value.isFinite
        {
            scalar.string = plainDecimal(value)
        }
        return .scalar(scalar)
    case .mapping(let mapping):
        return .mapping(
            Node.Mapping(mapping.map { (plainNumbers($0.key), plainNumbers($0.value)) }, mapping.tag, mapping.style))
    case .sequence(let sequence):
        return .sequence(Node.Sequence(sequence.map(plainNumbers), sequence.tag, sequence.style))
    case .alias:
        return node
    }
}

/// `30`, `25.4`, `0.00001`: a whole number without a fraction, otherwise the shortest digits that read back to
/// the same double (Swift's), with the exponent spelled out as zeros.
func plainDecimal(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    var text = "\(abs(value))"
    let parts = text.split(separator: "e")
    if parts.count == 2, let exponent = Int(parts[1]), abs(exponent) < 40 {
        let mantissa = parts[0]
        let digits = mantissa.filter { $0 != "." }
        let point = (mantissa.firstIndex(of: ".").map { mantissa.distance(from: mantissa.startIndex, to: $0) }
            ?? mantissa.count) + exponent
        if point <= 0 {
            text = "0." + String(repeating: "0", count: -point) + digits
        } else if point >= digits.count {
            text = digits + String(repeating: "0", count: point - digits.count)
        } else {
            text = String(digits.prefix(point)) + "." + String(digits.dropFirst(point))
        }
    }
    return value < 0 ? "-" + text : text
}
