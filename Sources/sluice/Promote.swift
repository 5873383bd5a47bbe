import ArgumentParser
import SluiceAPI

/// `sluice promote STRATEGY [--full]`: end the current hold or pause now.
struct Promote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "End the current hold or pause now (--full: go straight to 100%).")

    @Argument(help: "NAME or NAMESPACE/NAME.") var strategy: String
    @Flag(help: "Go straight to 100% instead of the next stage.") var full = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await runClient {
            let api = try client.client()
            let active = try await api.activeRollout(of: try strategyKey(strategy))
            let rollout = try await api.post(
                "/v1/rollouts/\(active.id)/promote", json: PromoteRequest(full: full), as: RolloutView.self)
            write("promotion\(full ? " to 100%" : "") of \(rollout.strategy) requested; \(describe(rollout))\n")
        }
    }
}

/// `rollout r-3 (v2): Progressing, stage 2/4 pilot, weight 25%`.
func describe(_ rollout: RolloutView) -> String {
    var text = "rollout \(rollout.id) (\(rollout.version)): \(rollout.phase)"
    if let stage = rollout.stage, let count = rollout.stageCount { text += ", stage \(stage.index + 1)/\(count) \(stage.name)" }
    return text + ", weight \(rollout.weight)%"
}
