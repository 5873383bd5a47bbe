import ArgumentParser
import SluiceCore

/// `sluice schema`: prints the strategy format's JSON Schema for editors' YAML extensions.
struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the JSON Schema (2020-12) of strategy files, for editors.",
        discussion: """
            Save it and point your editor at it, e.g. with a first line \
            `# yaml-language-server: $schema=./strategy.schema.json` in a strategy file. \
            `sluice validate` checks more rules than a schema can express.
            """
    )

    func run() throws {
        print(StrategySchema.json, terminator: "")
    }
}
