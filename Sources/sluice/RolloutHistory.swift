import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore

extension RolloutCommand {
    /// `sluice rollout list [STRATEGY] [--limit N] [--after ID] [-o table|json]`: rollout history, newest first.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rollouts, newest first, a page at a time (of one strategy, or of all).",
            discussion: """
                When more rollouts follow, the last line on stderr says how to ask for the next page \
                (--after the last rollout listed). Exit codes: 0 listed; 3 server unreachable or error; 64 usage.
                """)

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case table, json
        }

        @Argument(help: "NAME or NAMESPACE/NAME (default: every strategy).") var strategy: String?
        @Option(help: "At most this many rollouts (1-1000).") var limit = 20
        @Option(help: "Start after this rollout (the id the previous page ended with).") var after: String?
        @Option(name: .shortAndLong, help: "table, or json (the API's page: {rollouts, next}).") var output: Format = .table
        @OptionGroup var client: ClientOptions

        func validate() throws {
            if !(1...1000).contains(limit) { throw ValidationError("--limit must be 1...1000, got \(limit)") }
        }

        func run() async throws {
            try await runClient {
                let api = try client.client()
                var query = "limit=\(limit)"
                if let strategy {
                    let key = try strategyKey(strategy)
                    query += "&strategy=\(APIClient.escape(key.description))"
                }
                if let after { query += "&after=\(APIClient.escape(after))" }
                let page = try await api.get("/v1/rollouts?\(query)", as: RolloutList.self)
                if page.rollouts.isEmpty, page.next == nil, after == nil, let strategy {
                    _ = try await api.strategy(try strategyKey(strategy))  // the 404 when it does not exist
                }
                switch output {
                case .json:
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    write("\(lines: String(decoding: try encoder.encode(page), as: UTF8.self))\n")
                case .table:
                    write("\(lines: Self.table(page.rollouts))")
                }
                if let next = page.next {
                    let more = ["sluice rollout list"] + (strategy.map { [$0] } ?? []) + ["--limit \(limit) --after \(next)"]
                    note("more rollouts follow: \(more.joined(separator: " "))")
                }
            }
        }

        static func table(_ rollouts: [RolloutView]) -> String {
            guard !rollouts.isEmpty else { return "no rollouts\n" }
            var rows = [["ROLLOUT", "STRATEGY", "VERSION", "PHASE", "STAGE", "WEIGHT", "CREATED", "ENDED BECAUSE"]]
            for r in rollouts {
                let stage = r.stage.map { "\($0.index + 1)/\(r.stageCount ?? 0) \($0.name)" } ?? "-"
                rows.append(
                    [r.id, r.strategy, r.version, r.phase, stage, "\(r.weight)%", r.createdAt, r.endReason ?? "-"]
                        .map { visibleControls($0) })
            }
            return textTable(rows)
        }
    }

    /// `sluice rollout get ID [-o text|json|yaml]`: one rollout, in full.
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One rollout: version, phase, stage, weight, hold left, each check's last sample, how it ended.",
            discussion: "Exit codes: 0 shown; 3 unknown rollout (404), server unreachable or error; 64 usage.")

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case text, json, yaml
        }

        @Argument(help: "The rollout's id (from `sluice rollout list` or `sluice status`).") var id: String
        @Option(name: .shortAndLong, help: "text, json or yaml.") var output: Format = .text
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await runClient {
                let rollout = try await client.client().get("/v1/rollouts/\(APIClient.escape(id))", as: RolloutView.self)
                switch output {
                case .json:
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    write("\(lines: String(decoding: try encoder.encode(rollout), as: UTF8.self))\n")
                case .yaml:
                    write("\(lines: try yamlDocument(rollout))")
                case .text:
                    write("\(lines: Self.text(rollout))")
                }
            }
        }

        /// `name: value` lines, each value with its control characters made visible.
        static func text(_ r: RolloutView) -> String {
            var fields: [(String, String)] = [
                ("rollout", r.id), ("strategy", "\(r.strategy) (revision \(r.revision))"), ("version", r.version),
                ("phase", r.phase + (r.pausedBecause.map { " (\($0))" } ?? "")),
            ]
            if let stage = r.stage { fields.append(("stage", "\(stage.index + 1)/\(r.stageCount ?? 0) \(stage.name)")) }
            fields.append(("weight", "\(r.weight)%"))
            if let left = r.holdRemainingSeconds { fields.append(("hold left", formatSeconds(left))) }
            if let left = r.bakeRemainingSeconds { fields.append(("bake left", formatSeconds(left))) }
            for check in r.checks { fields.append(("check", RolloutDisplay.checkText(check))) }
            fields += [("created", r.createdAt), ("updated", r.updatedAt)]
            if let reason = r.endReason { fields.append(("ended because", reason)) }
            return fields.map { "\($0.0): \(visibleControls($0.1))\n" }.joined()
        }
    }
}

/// Rows as columns two spaces apart, the last column unpadded; cells are already safe to print.
func textTable(_ rows: [[String]]) -> String {
    var widths = Array(repeating: 0, count: rows.first?.count ?? 0)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
        row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
}
