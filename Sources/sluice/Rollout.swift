import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore

/// `sluice rollout start STRATEGY --version V [--wait] [--timeout D]`.
struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout", abstract: "Start a rollout (CI); list rollouts or show one.",
        subcommands: [Start.self, List.self, Get.self])

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a rollout of a new version; with --wait, follow it and exit with its verdict.",
            discussion: """
                Exit codes: 0 started (with --wait: succeeded); 1 rolled back or failed; 3 server unreachable or \
                error; 4 --timeout passed before a verdict (the rollout goes on); 64 usage. In a log (stdout not a \
                terminal) --wait prints a line at each change and at least every --progress-interval.
                """)

        @Argument(help: "NAME or NAMESPACE/NAME.") var strategy: String
        @Option(help: "The version to roll out (an image tag for Deployment targets).") var version: String
        @Flag(help: "Follow the rollout and exit with its verdict.") var wait = false
        @Option(help: "With --wait: give up waiting after this long, e.g. 45m (the rollout goes on).")
        var timeout: DurationArgument?
        @Option(help: "With --wait in a log: print a progress line at least this often, e.g. 30s (CI watchdogs).")
        var progressInterval: DurationArgument = DurationArgument(.seconds(60))
        @Flag(help: "Roll back an active rollout of the strategy first.") var supersede = false
        @OptionGroup var client: ClientOptions

        func validate() throws {
            if version.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--version must not be empty") }
            if let problem = Rollout.versionProblem(version.trimmingCharacters(in: .whitespaces)) {
                throw ValidationError("--version " + problem)
            }
            if timeout != nil && !wait { throw ValidationError("--timeout needs --wait") }
            if progressInterval.duration <= .zero { throw ValidationError("--progress-interval must be positive") }
        }

        func run() async throws {
            try await runClient {
                let api = try client.client()
                let key = try strategyKey(strategy)
                let started = try await api.post(
                    "/v1/rollouts",
                    json: StartRolloutRequest(
                        strategy: key.name, namespace: key.namespace, version: version, supersede: supersede ? true : nil),
                    as: RolloutView.self)
                write("rollout \(started.id) of \(started.strategy) to \(started.version) started\n")
                guard wait else { return }
                try await follow(api, started)
            }
        }

        /// Follows the rollout until a verdict or the timeout: redrawn at each of its events (a Server-Sent Events
        /// stream) and every second on a terminal so the hold countdown moves.
        func follow(_ api: APIClient, _ started: RolloutView) async throws {
            let deadline = timeout.map { ContinuousClock.now + $0.duration }
            let terminal = stdoutIsTerminal
            var display = RolloutDisplay(terminal: terminal, progressInterval: progressInterval.duration)
            let tick: Duration = terminal ? .seconds(1) : min(.seconds(10), progressInterval.duration)
            try await redrawOnChange(
                api, filter: "&rollout=\(APIClient.escape(started.id))", tick: tick, deadline: deadline
            ) {
                let rollout = try await api.get("/v1/rollouts/\(started.id)", as: RolloutView.self)
                display.show(rollout)
                switch rollout.phase {
                case "Succeeded":
                    write("rollout \(rollout.id) succeeded: \(rollout.version) is stable\n")
                    return true
                case "RolledBack", "Failed":
                    throw CLIError(
                        .verdict,
                        "rollout \(rollout.id) \(rollout.phase == "Failed" ? "failed" : "was rolled back")"
                            + (rollout.endReason.map { ": \($0)" } ?? ""))
                default: break
                }
                if let deadline, ContinuousClock.now >= deadline {
                    throw CLIError(
                        .timeout,
                        "timed out after \(timeout!.duration) waiting for rollout \(rollout.id) (still \(rollout.phase); "
                            + "it goes on: sluice status \(rollout.strategy))"
                            + (rollout.router?.failure.map { "; stuck: \($0)" } ?? ""))
                }
                return false
            }
        }
    }
}
