import Foundation
import SluiceTestSupport
import Testing

/// runbooks/README.md's severity model and docs/operations.md as an operations manual: the P0-P3 table with its
/// response times, first commands and escalation; the post-incident export; daily, weekly and monthly rounds
/// whose commands RunbookTests runs; capacity figures that BENCHMARKS.md reports; the alerts table as the rules
/// grade them.
struct OperationsManualTests {
    static func read(_ path: String) throws -> String {
        try String(contentsOfFile: repositoryRoot() + "/" + path, encoding: .utf8)
    }

    /// The cells of each row of the markdown table whose header row starts with `header`.
    static func table(_ text: String, header: String) -> [[String]] {
        let lines = text.split(separator: "\n").map(String.init)
        guard let start = lines.firstIndex(where: { $0.hasPrefix(header) }) else { return [] }
        return lines[(start + 2)...].prefix { $0.hasPrefix("|") }.map { row in
            row.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    /// The text of the `##`/`###` section titled `title`, up to the next heading of any level up to its own.
    static func section(_ text: String, _ title: String) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(where: { $0.hasSuffix(" " + title) && $0.hasPrefix("#") }) else { return "" }
        let level = lines[start].prefix { $0 == "#" }.count
        let rest = lines[(start + 1)...].prefix { line in
            let hashes = line.prefix { $0 == "#" }.count
            return hashes == 0 || hashes > level
        }
        return rest.joined(separator: "\n")
    }

    @Test
    func theSeverityTableGradesP0ToP3WithResponseTimesFirstCommandsAndEscalation() throws {
        let rows = Self.table(try Self.read("runbooks/README.md"), header: "| severity |")
        #expect(rows.map { $0.first ?? "" } == ["**P0**", "**P1**", "**P2**", "**P3**"])
        #expect(rows.map { $0.count > 2 ? $0[2] : "" } == ["5 min", "15 min", "30 min", "2 h"])
        for row in rows where row.count == 5 {
            #expect(row[3].hasPrefix("`sluice "), "\(row[0]): the first command is a sluice command (RunbookTests runs it)")
            #expect(!row[4].isEmpty, "\(row[0]): whom to escalate to")
        }
        #expect(rows.first.map { $0[1].contains("bad version") && $0[1].contains("rollback is not confirmed") } == true)
        #expect(rows.dropFirst().first.map { $0[1].contains("down") && $0[1].contains("rollouts are in flight") } == true)
    }

    @Test
    func thePostIncidentChecklistExportsTheRolloutsEventLog() throws {
        let after = Self.section(try Self.read("runbooks/README.md"), "After the incident")
        #expect(after.contains("sluice events shop/checkout --rollout ROLLOUT -o json > incident-timeline.json"), "\(after)")
        #expect(after.contains("sluice rollout list shop/checkout"), "where ROLLOUT comes from")
    }

    /// Each round has commands in a sh block (RunbookTests runs them) and names what to look at.
    @Test
    func theManualHasDailyWeeklyAndMonthlyRoundsWithCommands() throws {
        let manual = try Self.read("docs/operations.md")
        let expected = [
            "Daily": ["sluice status", "sluice events --since 24h", "Alerts"],
            "Weekly": ["Tokens", "sluice_api_tokens_file_stale", "Store size", "Backup drill", "sluice backup"],
            "Monthly": ["Upgrade Sluice", "Review thresholds", "sluice replay"],
        ]
        for (title, words) in expected {
            let section = Self.section(manual, title)
            #expect(section.contains("```sh\n"), "\(title) has commands")
            for word in words { #expect(section.contains(word), "\(title) mentions \(word)") }
        }
    }

    /// Every figure of the capacity table, and the per-rollout figures, are ones BENCHMARKS.md reports.
    @Test
    func capacityFiguresAreTheMeasuredOnes() throws {
        let benchmarks = try Self.read("BENCHMARKS.md")
        let capacity = Self.section(try Self.read("docs/operations.md"), "Capacity")
        let rows = Self.table(capacity, header: "| active rollouts per replica |")
        #expect(rows.count == 3)
        let measuredRows = benchmarks.replacingOccurrences(of: "**", with: "").split(separator: "\n")
        for row in rows {
            #expect(
                measuredRows.contains { line in
                    line.hasPrefix("| \(row[0]) |") && row.dropFirst().allSatisfy { line.contains($0) }
                }, "\(row) is not a row of BENCHMARKS.md")
        }
        for figure in ["143 KB per", "≈ 42 KB", "≈ 4 KB", "535"] {
            #expect(capacity.contains(figure) && benchmarks.contains(figure), "\(figure)")
        }
    }

    /// docs/operations.md's alerts table grades and links each alert as the rule file does.
    @Test
    func theAlertsTableAgreesWithTheRules() throws {
        let rows = Self.table(try Self.read("docs/operations.md"), header: "| alert | means | severity | runbook |")
        var documented: [String: (severity: String, runbook: String)] = [:]
        for row in rows where row.count == 4 {
            let runbook = row[3].firstMatch(of: /\(\.\.\/(runbooks\/[a-z-]+\.md)/).map { String($0.output.1) } ?? ""
            documented[row[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))] = (row[2], runbook)
        }
        let alerts = try AlertRulesTests.alerts()
        #expect(documented.count == alerts.count, "\(documented.keys.sorted())")
        for alert in alerts {
            let name = alert["alert"] as? String ?? "?"
            let severity = (alert["labels"] as? [String: Any])?["severity"] as? String
            let runbook = (alert["annotations"] as? [String: Any])?["runbook_url"] as? String
            #expect(documented[name]?.severity == severity, "\(name): the table says \(documented[name]?.severity ?? "nothing")")
            #expect(documented[name]?.runbook == runbook, "\(name): the table links \(documented[name]?.runbook ?? "nothing")")
        }
    }
}
