import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore
import Yams

/// `sluice status [STRATEGY] [-o table|json|yaml] [--watch]`.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Phase, stage, weight and the last sample of each check, per strategy.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, yaml
    }

    @Argument(help: "NAME or NAMESPACE/NAME (default: every strategy).") var strategy: String?
    @Option(name: .shortAndLong, help: "table, json or yaml.") var output: Format = .table
    @Flag(help: "Redraw on every change until interrupted.") var watch = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await runClient {
            let api = try client.client()
            let key = try strategy.map(strategyKey)
            let show = {
                let text = try render(try await current(api, key))
                if watch && stdoutIsTerminal {
                    write("\u{1B}[H\u{1B}[2J\(lines: text)")
                } else {
                    write(watch ? "\(lines: text)\n" : "\(lines: text)")
                }
            }
            guard watch else { return try await show() }
            // Redrawn at every event of the strategy (Server-Sent Events), and every 5 s for the hold countdown.
            let filter = key.map { "&strategy=\(APIClient.escape($0.description))" } ?? ""
            try await redrawOnChange(api, filter: filter, tick: .seconds(5)) {
                try await show()
                return false
            }
        }
    }

    /// The newest rollout of each strategy (or of the one asked for).
    func current(_ api: APIClient, _ key: StrategyKey?) async throws -> [RolloutView] {
        if let key {
            guard let newest = try await api.newestRollout(of: key) else {
                // Say whether the strategy exists at all.
                _ = try await api.get(
                    "/v1/strategies/\(APIClient.escape(key.namespace))/\(APIClient.escape(key.name))",
                    as: StrategyView.self)
                return []
            }
            return [newest]
        }
        // Newest first, page after page: the first rollout seen of a strategy is its newest. Only strategies that
        // are applied now: a deleted one's rollouts stay in the history (`rollout list`), not in the overview.
        let applied = Set(try await api.get("/v1/strategies", as: StrategyList.self).strategies.map {
            "\($0.namespace)/\($0.name)"
        })
        var newest: [String: RolloutView] = [:]
        for rollout in try await api.allRollouts() where newest[rollout.strategy] == nil && applied.contains(rollout.strategy) {
            newest[rollout.strategy] = rollout
        }
        return newest.keys.sorted().map { newest[$0]! }
    }

    func render(_ rollouts: [RolloutView]) throws -> String {
        switch output {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try encoder.encode(RolloutList(rollouts: rollouts)), as: UTF8.self) + "\n"
        case .yaml:
            return try yamlDocument(RolloutList(rollouts: rollouts))
        case .table:
            return Self.table(rollouts)
        }
    }

    static func table(_ rollouts: [RolloutView]) -> String {
        guard !rollouts.isEmpty else { return "no rollouts\n" }
        var rows = [["STRATEGY", "ROLLOUT", "VERSION", "PHASE", "STAGE", "WEIGHT", "HOLD LEFT", "CHECKS"]]
        for r in rollouts {
            let stage = r.stage.map { "\($0.index + 1)/\(r.stageCount ?? 0) \($0.name)" } ?? "-"
            let hold = r.holdRemainingSeconds.map(formatSeconds)
                ?? r.bakeRemainingSeconds.map { "bake " + formatSeconds($0) } ?? "-"
            let checks = r.checks.map(RolloutDisplay.checkText).joined(separator: ", ")
            rows.append(
                [
                    r.strategy, r.id, r.version, r.phase, stage, RolloutDisplay.weightText(r), hold,
                    checks.isEmpty ? "-" : checks,
                ].map { visibleControls($0) })
        }
        return textTable(rows) + notes(rollouts)
    }

    /// Under the table, why a rollout does not get where it should: the effect that fails, and that Sluice
    /// keeps retrying it.
    static func notes(_ rollouts: [RolloutView]) -> String {
        var text = ""
        for r in rollouts where !["Succeeded", "RolledBack", "Failed"].contains(r.phase) {
            if let failure = r.router?.failure {
                text += visibleControls("\(r.strategy): \(failure); Sluice keeps retrying")
                text += r.phase == "RollingBack" ? " (traffic is not confirmed on stable)\n" : "\n"
            } else if let router = r.router, !router.confirmed, router.unconfirmedSeconds != nil {
                text += visibleControls(r.strategy) + ": the router has not confirmed \(r.weight)% yet; Sluice keeps setting it\n"
            }
        }
        return text
    }
}
