import ArgumentParser
import SluiceAPI
import SluiceCore

/// `sluice strategy delete STRATEGY`: a strategy that is no longer rolled out goes away; its history stays.
struct StrategyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strategy", abstract: "Manage applied strategies (release).", subcommands: [Delete.self])

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a strategy (refused while a rollout of it is active); its rollouts and events stay.")

        @Argument(help: "NAME or NAMESPACE/NAME.") var strategy: String
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await runClient {
                let api = try client.client()
                let key = try strategyKey(strategy)
                let result = try api.decode(
                    DeleteResult.self,
                    from: try await api.send("DELETE", "/v1/strategies/\(key.namespace)/\(key.name)"))
                write("strategy \(result.strategy) deleted (its last revision was \(result.revision)); its rollouts and "
                    + "events stay: sluice rollout list \(result.strategy), sluice events \(result.strategy)\n")
            }
        }
    }
}
