import ArgumentParser
import SluiceAPI

/// `sluice resume STRATEGY`: restart stage progression.
struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Restart stage progression of a paused rollout.")

    @Argument(help: "NAME or NAMESPACE/NAME.") var strategy: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await runClient {
            let rollout = try await client.client().command("resume", strategy: strategy, body: [String: String]())
            write("resume of \(rollout.strategy) requested; \(describe(rollout))\n")
        }
    }
}

