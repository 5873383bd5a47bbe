import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore

/// `sluice rollback STRATEGY --reason TEXT`: traffic to stable first, then the canary is scaled down.
struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Roll back the active rollout of a strategy now: traffic to stable first.")

    @Argument(help: "NAME or NAMESPACE/NAME.") var strategy: String
    @Option(help: "Why (recorded in the event log).") var reason: String
    @Option(help: "How long to wait for traffic to be back on stable, e.g. 30s.")
    var wait: DurationArgument = DurationArgument(.seconds(30))
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason must say why") }
    }

    func run() async throws {
        try await runClient {
            let api = try client.client()
            let key = try strategyKey(strategy)
            let active = try await api.activeRollout(of: key)
            var rollout = try await api.post(
                "/v1/rollouts/\(active.id)/rollback", json: RollbackRequest(reason: reason), as: RolloutView.self)
            write("rollback of \(rollout.strategy) (rollout \(rollout.id), version \(rollout.version)) requested\n")
            let deadline = ContinuousClock.now + wait.duration
            let id = rollout.id
            // Re-read at each of the rollout's events until traffic is on stable or `--wait` runs out.
            try await redrawOnChange(api, filter: "&rollout=\(APIClient.escape(id))", tick: .seconds(1)) {
                rollout = try await api.get("/v1/rollouts/\(id)", as: RolloutView.self)
                return ["RolledBack", "Failed", "Succeeded"].contains(rollout.phase)
                    || (rollout.phase == "RollingBack" && rollout.weight == 0) || ContinuousClock.now >= deadline
            }
            write("\(lines: Self.trafficLine(rollout))")
        }
    }

    /// Where traffic is now, in one line on-call can paste into the incident channel.
    static func trafficLine(_ rollout: RolloutView) -> String {
        let stable = 100 - rollout.weight
        switch rollout.phase {
        case "RolledBack":
            return "traffic: \(stable)% stable, \(rollout.weight)% canary; rollout \(rollout.id) is RolledBack\n"
        case "RollingBack" where rollout.weight == 0:
            return "traffic: 100% stable, 0% canary; scaling the canary down (phase RollingBack)\n"
        default:
            return "traffic: Sluice wants \(stable)% stable, \(rollout.weight)% canary; phase \(rollout.phase) "
                + "(follow with: sluice events \(rollout.strategy) --follow)\n"
        }
    }
}
