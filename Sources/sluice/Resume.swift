import ArgumentParser
import SluiceAPI

/// `sluice resume STRATEGY`: restart stage progression.
struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Restart stage progression of a paused rollout.")

    @Argument(help: "NAME or NAMESPACE/NAME.") var strategy: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await runClient {
            let api = try client.client()
            let active = try await api.activeRollout(of: try strategyKey(strategy))
            let rollout = try await api.post("/v1/rollouts/\(active.id)/resume", json: [String: String](), as: RolloutView.self)
            write("resume of \(rollout.strategy) requested; \(describe(rollout))\n")
        }
    }
}

