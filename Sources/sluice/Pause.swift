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
            let api = try client.client()
            let active = try await api.activeRollout(of: try strategyKey(strategy))
            let rollout = try await api.post("/v1/rollouts/\(active.id)/pause", json: [String: String](), as: RolloutView.self)
            write("pause of \(rollout.strategy) requested; \(describe(rollout))\n")
        }
    }
}

