import ArgumentParser
import SluiceAPI

/// `sluice pause STRATEGY`: stop stage progression (analysis keeps running).
struct Pause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop stage progression of the active rollout; analysis keeps running.")

    @Argument(help: "NAME or NAMESPACE/NAME.") var strategy: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await runClient {
            let rollout = try await client.client().command("pause", strategy: strategy, body: [String: String]())
            write("pause of \(rollout.strategy) requested; \(describe(rollout))\n")
        }
    }
}

