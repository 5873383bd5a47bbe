import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore
import SluiceHTTP
import SluiceProviders

/// `sluice replay FILE --from T --to T`: what a strategy's checks would have made of a rollout over Prometheus history.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a strategy's checks over Prometheus history: the timeline a rollout would have had.",
        discussion: """
            Runs the same decisions a live rollout makes, tick by tick on a virtual clock from --from to --to, \
            with every query sent as the instant query a live tick would have sent at that time. The canary is \
            taken as ready and every weight as set; only the checks decide. Times: RFC 3339 \
            (2026-12-07T14:30:00Z), Unix seconds, now, or now-DURATION (now-1h). Exit status: 0 would have \
            promoted; 1 would have rolled back, or the file is invalid; 3 Prometheus unreachable or refusing; 4 \
            neither by --to; 64 bad usage. See docs/judge.md.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table
        case json
    }

    @Argument(help: "A strategy file.")
    var file: String

    @Option(help: "Start of the history: the rollout starts here.")
    var from: String

    @Option(help: "End of the history: no tick after it.")
    var to: String

    @Option(help: "Time between ticks (default: the strategy's analysis.interval, as live).")
    var step: DurationArgument?

    @Option(help: "Ask this Prometheus instead of each provider's address (e.g. a port-forward).")
    var prometheus: String?

    @Option(help: "The value of {{version}} in queries.")
    var version = "replay"

    @Option(help: "The strategy to replay, when the file holds several (its name or namespace/name).")
    var strategy: String?

    @Flag(help: "upstreams targets: the pools in swapped roles (after an odd number of promotions), as they were.")
    var swapPools = false

    @Option(name: [.customShort("o"), .customLong("output")], help: "table or json.")
    var output: Format = .table

    /// More ticks than this is a mistake (a year at 10 s is 3 million): say so rather than query for hours.
    static let maxTicks = 100_000

    func run() async throws {
        let now = Timestamp(Date())
        guard let start = Timestamp(argument: from, now: now) else {
            throw ValidationError("--from \(from): not a time; write 2026-12-07T14:30:00Z, Unix seconds, now or now-1h")
        }
        guard let end = Timestamp(argument: to, now: now) else {
            throw ValidationError("--to \(to): not a time; write 2026-12-07T14:30:00Z, Unix seconds, now or now-1h")
        }
        guard start < end else {
            throw ValidationError("--from \(start.rfc3339) is not before --to \(end.rfc3339)")
        }
        guard end <= now + .seconds(60) else {
            throw ValidationError("--to \(end.rfc3339) is in the future; Prometheus has no history there yet")
        }
        if let prometheus, !["http://", "https://"].contains(where: { prometheus.lowercased().hasPrefix($0) }) {
            throw ValidationError("--prometheus \(prometheus): not an http:// or https:// URL")
        }
        let chosen = try loadStrategy()
        var pools: Pools?
        if swapPools {
            guard case .upstreams(let stable, let canary, _) = chosen.target else {
                throw ValidationError("--swap-pools: \(chosen.key) has no upstreams pools to swap")
            }
            pools = Pools(stable: canary, canary: stable)
        }
        let interval = step?.duration ?? chosen.analysis.interval
        guard interval >= .seconds(1) else { throw ValidationError("--step \(interval.goString): at least 1s") }
        let ticks = (end - start).milliseconds / interval.milliseconds
        guard ticks <= Self.maxTicks else {
            throw ValidationError(
                "--from to --to every \(interval.goString) is \(ticks) ticks, more than \(Self.maxTicks); "
                    + "replay a shorter history or a longer --step")
        }
        let history: PrometheusHistory
        do {
            history = try PrometheusHistory(
                strategy: chosen, registry: MetricProviderRegistry(client: try CurlClient()), address: prometheus)
            try await history.probe(at: start)
        } catch {
            writeError("\(file): error: \(chosen.key): \(error)")
            throw ExitCode(3)
        }
        let replay = Replay(strategy: chosen, version: version, from: start, to: end, step: interval, pools: pools)
        let timeline = await replay.run { checks, rollout, time in
            await history.sample(checks, rollout: rollout, strategy: chosen, at: time)
        }
        let report = ReplayReport(replay: replay, timeline: timeline)
        switch output {
        case .table: write("\(lines: report.text)")
        case .json: write("\(lines: try report.json())")
        }
        switch timeline.outcome {
        case .promoted: return
        case .rolledBack: throw ExitCode(1)
        case .paused, .undecided: throw ExitCode(4)
        }
    }

    /// The one strategy of the file, or the one `--strategy` names; invalid files print every error.
    private func loadStrategy() throws -> Strategy {
        let strategies: [Strategy]
        do {
            strategies = try StrategyLoader.loadValid(yaml: try StrategyFiles.read(file), file: file)
        } catch let error as StrategyValidationError {
            error.errors.forEach { writeError("\($0)") }
            throw ExitCode(1)
        } catch {
            writeError("\(file): error: \(error)")
            throw ExitCode(1)
        }
        let names = strategies.map { $0.key.description }.joined(separator: ", ")
        guard let strategy else {
            guard strategies.count == 1, let only = strategies.first else {
                throw ValidationError(
                    "\(file) holds \(strategies.count) strategies (\(names)); pick one with --strategy")
            }
            return only
        }
        guard let found = strategies.first(where: { $0.name == strategy || $0.key.description == strategy }) else {
            throw ValidationError("--strategy \(strategy): \(file) holds \(names)")
        }
        return found
    }
}
