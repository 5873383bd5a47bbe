import ArgumentParser

/// Benchmarks of Sluice parts, each a subcommand.
/// Run with `swift run -c release --package-path Benchmarks sluice-bench`.
/// The entry point is `SluiceBenchMain` (a synchronous main; see there why).
struct SluiceBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-bench",
        abstract: "Benchmarks of Sluice parts against loopback servers.",
        subcommands: [
            HTTPBenchmark.self, RouterLatencyBenchmark.self, RollbackLatencyBenchmark.self, TickCostBenchmark.self,
            FakesCommand.self, ScaleBenchmark.self, SoakBenchmark.self,
        ]
    )
}
