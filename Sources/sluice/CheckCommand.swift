import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore
import SluiceHTTP
import SluiceProviders

/// `sluice check FILE [--stage N]`: every check of a strategy once, now, against its real providers.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Run every check of a strategy once, now, against its real providers.",
        discussion: """
            Prints each check's query (templates filled in), value, threshold and verdict. Exit status: 0 when \
            every check passes; 1 when any breaches or has no data, or the file is invalid; 64 on bad usage. \
            See docs/checks.md.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table
        case json
    }

    @Argument(help: "A strategy file; every strategy in it is checked.")
    var file: String

    @Option(help: "Also run the checks of this stage: its index as in spec.stages[N], or its name.")
    var stage: String?

    @Option(help: "The value of {{version}} in queries.")
    var version = "check"

    @Option(name: [.customShort("o"), .customLong("output")], help: "table or json.")
    var output: Format = .table

    func run() async throws {
        let text: String
        do {
            text = try StrategyFiles.read(file)
        } catch {
            printError("\(file): error: \(error)")
            throw ExitCode(1)
        }
        let strategies: [Strategy]
        do {
            strategies = try StrategyLoader.loadValid(yaml: text, file: file)
        } catch {
            error.errors.forEach { printError("\($0)") }
            throw ExitCode(1)
        }
        let registry = MetricProviderRegistry(client: try CurlClient())
        var results: [CheckResult] = []
        for strategy in strategies {
            let index = try stageIndex(in: strategy)
            let providers: [String: any MetricProvider]
            do {
                providers = try registry.makeProviders(for: strategy.analysis)
            } catch {
                printError("\(file): error: \(strategy.key): \(error)")
                throw ExitCode(1)
            }
            var found = await CheckRunner(providers: providers).run(strategy, stage: index, version: version)
            if strategies.count > 1 {
                for i in found.indices { found[i].check = "\(strategy.name)/\(found[i].check)" }
            }
            results += found
        }
        if results.isEmpty { printError("\(file): no checks to run") }
        switch output {
        case .table: write("\(lines: CheckReport.table(results))")
        case .json: write("\(lines: try CheckReport.json(results))")
        }
        if results.contains(where: { $0.verdict != .pass }) { throw ExitCode(1) }
    }

    /// `--stage` as an index into `strategy.stages`; a usage error when it names no stage.
    private func stageIndex(in strategy: Strategy) throws -> Int? {
        guard let stage else { return nil }
        if let index = Int(stage), strategy.stages.indices.contains(index) { return index }
        if let index = strategy.stages.firstIndex(where: { $0.name == stage }) { return index }
        let names = strategy.stages.enumerated().map { "\($0.offset) (\($0.element.name))" }.joined(separator: ", ")
        throw ValidationError("--stage \(stage): \(strategy.key) has no such stage; its stages are \(names)")
    }
}
