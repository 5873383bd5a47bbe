import Foundation
import SluiceCore
import SluiceTestSupport
import Testing

/// What the strategy format promises and the reader once missed: optional stage names, every event type
/// subscribable.
@Suite struct StrategyFormatTests {
    /// A stage's `name` is optional (the strategy format lists only weight, hold, pause, checks).
    @Test func aStageWithoutANameIsStageNCountedFromOne() throws {
        let yaml = baseStrategy
            .replacingOccurrences(of: "{name: canary, weight: 5,", with: "{weight: 5,")
            .replacingOccurrences(of: "{name: full, weight: 100}", with: "{weight: 100}")
        let result = StrategyLoader.load(yaml: yaml, file: "t.yaml")
        #expect(result.errors == [])
        #expect(try #require(result.strategies.first).stages.map(\.name) == ["stage-1", "pilot", "stage-3"])
    }

    @Test func stablePromotedCanBeSubscribedToAndIsDocumented() throws {
        let yaml = baseStrategy.replacingOccurrences(of: "on: [RolledBack]", with: "on: [StablePromoted, RolledBack]")
        let result = StrategyLoader.load(yaml: yaml, file: "t.yaml")
        #expect(result.errors == [])
        #expect(try #require(result.strategies.first).notifications.first?.on.contains("StablePromoted") == true)
        #expect(StrategySchema.json.contains("\"StablePromoted\""))
        let doc = try String(contentsOfFile: repositoryRoot() + "/docs/strategy.md", encoding: .utf8)
        for type in NotificationTarget.eventTypes {
            #expect(doc.contains("`\(type.rawValue)`"), "docs/strategy.md lists \(type.rawValue)")
        }
    }
}
