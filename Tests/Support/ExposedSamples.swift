/// The samples of a Prometheus text exposition by series, as written (`name{label="value",...}`), for tests that
/// read a value rather than compare how the exporter prints a number.
public struct ExposedSamples: Sendable {
    public let values: [String: Double]

    public init(_ text: String) {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        self.values = values
    }

    public subscript(_ series: String) -> Double? { values[series] }
}
