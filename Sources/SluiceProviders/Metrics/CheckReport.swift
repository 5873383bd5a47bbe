import Foundation
import SluiceCore

/// How `sluice check` shows check results: a table for people, JSON for scripts.
public enum CheckReport {
    /// The longest query shown in the table; the JSON output has it whole.
    public static let queryWidth = 60

    /// Columns CHECK, QUERY (truncated, on one line), VALUE, THRESHOLD, VERDICT, then one line per
    /// check without a pass saying why.
    public static func table(_ results: [CheckResult]) -> String {
        let header = ["CHECK", "QUERY", "VALUE", "THRESHOLD", "VERDICT"]
        let rows = results.map { result in
            [
                result.check, truncated(oneLine(result.query), to: queryWidth),
                result.value.map(formatNumber) ?? "-", result.threshold, result.verdict.rawValue,
            ]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        let lines = ([header] + rows).map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        let notes = results.filter { $0.verdict != .pass }.map { result in
            switch result.verdict {
            case .breach:
                "\(result.check): breach: \(result.value.map(formatNumber) ?? "-") is not \(result.threshold)"
            default:
                "\(result.check): no data: \(result.reason ?? "no value")"
            }
        }
        return (lines + (notes.isEmpty ? [] : [""] + notes)).joined(separator: "\n") + "\n"
    }

    /// The results as a JSON array, keys sorted, one object per check.
    public static func json(_ results: [CheckResult]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(results), as: UTF8.self) + "\n"
    }

    private static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    private static func truncated(_ text: String, to width: Int) -> String {
        text.count <= width ? text : String(text.prefix(width - 1)) + "…"
    }
}
