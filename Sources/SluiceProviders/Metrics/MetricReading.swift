import Foundation
import SluiceCore

/// What one query of a metric provider gave: a value, or no data and why.
public enum MetricReading: Sendable, Hashable {
    case value(Double)
    /// Empty result, NaN, ±Inf, a null: why, in words a release engineer can act on.
    case noData(reason: String)

    /// The value; nil for no data.
    public var value: Double? {
        if case .value(let value) = self { return value }
        return nil
    }

    /// `number` as a reading: NaN and ±Inf are no data, never a value a threshold could pass.
    public init(number: Double) {
        if number.isNaN {
            self = .noData(reason: "the query returned NaN (0/0: no requests in the window?)")
        } else if number.isInfinite {
            self = .noData(reason: "the query returned \(number > 0 ? "+Inf" : "-Inf") (division by zero?)")
        } else {
            self = .value(number)
        }
    }

    /// A reading of a number as the provider wrote it (`"0.13"`, `"NaN"`, `"+Inf"`); nil when it is
    /// not a number at all.
    public init?(numberText text: String) {
        let trimmed = Self.trimmingWhitespaces(text)
        switch trimmed.lowercased() {
        case "nan": self.init(number: .nan)
        case "+inf", "inf": self.init(number: .infinity)
        case "-inf": self.init(number: -.infinity)
        default:
            guard let number = Double(trimmed) else { return nil }
            self.init(number: number)
        }
    }

    /// `text` without the leading and trailing characters of Foundation's `.whitespaces` (tab and Unicode's
    /// space separators). Foundation's `trimmingCharacters(in:)` cost more than the rest of decoding an answer.
    private static func trimmingWhitespaces(_ text: String) -> Substring {
        func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
            scalar == " " || scalar == "\t" || (scalar.value >= 0x80 && CharacterSet.whitespaces.contains(scalar))
        }
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isWhitespace($0) }),
            let last = scalars.lastIndex(where: { !isWhitespace($0) })
        else { return "" }
        return Substring(scalars[first...last])
    }
}

/// A metric provider that can say why it has no data, which `sluice check` and events show.
public protocol MetricReader: MetricProvider {
    /// One instant reading of `query` (templates already rendered). Throws `ProviderError` when the
    /// provider failed or rejected the query.
    func read(query: String) async throws -> MetricReading
}

extension MetricReader {
    public func sample(query: String) async throws -> Double? {
        try await read(query: query).value
    }
}
