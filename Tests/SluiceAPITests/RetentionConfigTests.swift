import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

/// `sampleRetention` in sluice.yaml: a week unless said otherwise, in days or a Go duration, 0 for ever.
struct RetentionConfigTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var line: String
        var retention: Duration?
        var testDescription: String { line.isEmpty ? "(absent)" : line }
    }

    static func parse(_ line: String) throws -> ServerConfig {
        let dir = try makeTemporaryDirectory("sluice-retention-config")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "tokens: []\n".write(toFile: dir + "/tokens.yaml", atomically: true, encoding: .utf8)
        return try ServerConfig.parse("tokensFile: tokens.yaml\n" + line, file: "sluice.yaml", baseDirectory: dir)
    }

    @Test(arguments: [
        Case(line: "", retention: .seconds(7 * 86_400)),
        Case(line: "sampleRetention: 30d", retention: .seconds(30 * 86_400)),
        Case(line: "sampleRetention: 36h", retention: .seconds(36 * 3_600)),
        Case(line: "sampleRetention: 90m", retention: .seconds(90 * 60)),
        Case(line: "sampleRetention: 0", retention: nil),
        Case(line: "sampleRetention: 0d", retention: nil),
    ])
    func aRetentionIsReadInDaysOrAsADuration(_ example: Case) throws {
        #expect(try Self.parse(example.line).sampleRetention == example.retention)
    }

    @Test(arguments: ["-1d", "7 days", "1w", "99999999999999d", "-5m"])
    func aBadRetentionSaysWhereAndWhatIsAllowed(_ value: String) throws {
        let error = #expect(throws: ConfigError.self) { try Self.parse("sampleRetention: \(value)\n") }
        #expect(error?.line == 2, "\(error!)")
        #expect(error?.message.contains("`sampleRetention` must be a duration like 7d") == true, "\(error!)")
    }
}
