import ArgumentParser
import SluiceAPI
import SluiceCore

/// The `sluice` CLI: `serve` plus the client verbs. Only argument wiring lives here.
@main
struct Sluice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Progressive delivery: ship a new version a slice at a time, take it back when it hurts.",
        version: SluiceVersion.current,
        subcommands: [
            ValidateCommand.self, SchemaCommand.self, CheckCommand.self, Serve.self, Apply.self, RolloutCommand.self,
            ReplayCommand.self, StrategyCommand.self, Status.self, Rollback.self, Promote.self, Pause.self, Resume.self, Events.self,
            Token.self, Backup.self,
        ]
    )
}
