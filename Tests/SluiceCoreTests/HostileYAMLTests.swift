import Foundation
import SluiceCore
import SluiceTestSupport
import Testing

/// Alias bombs and other texts that cost far more to compose than they weigh are refused from the parse
/// events, before Yams builds anything, whatever line endings, comments or quotes they hide behind.
@Suite struct HostileYAMLTests {
    @Test(arguments: YAMLBomb.allCases)
    func anAliasBombIsRefusedBeforeComposing(_ bomb: YAMLBomb) {
        let started = ContinuousClock.now
        let result = StrategyLoader.load(yaml: bomb.text, file: "bomb.yaml")
        #expect(ContinuousClock.now - started < .seconds(1))
        #expect(result.strategies.isEmpty)
        #expect(result.errors.count == 1)
        #expect(
            result.errors.first?.message
                == "aliases expand this file to more than 100000 nodes; Sluice reads at most 100000 nodes, aliases counted in full",
            "\(result.errors)")
    }

    @Test func theBombIsWhereTheBudgetRunsOut() {
        // a0 to a4 and their keys are 76,738 nodes; the first alias of a5 (line 6, column 10) adds a4's 66,430.
        #expect(YAMLBudget.excess(in: YAMLBomb.plain.text).map { "\($0.line):\($0.column)" } == "6:10")
        // The same after a comment line ended by a lone CR.
        #expect(YAMLBudget.excess(in: YAMLBomb.carriageReturn.text).map { "\($0.line):\($0.column)" } == "7:10")
    }

    @Test func aliasesRepeatingLongTextCountItsBytes() {
        let text = "s: &s \"" + String(repeating: "x", count: 100_000) + "\"\n"
            + "l: [" + Array(repeating: "*s", count: 50).joined(separator: ", ") + "]\n"
        let result = StrategyLoader.load(yaml: text, file: "long.yaml")
        #expect(result.errors.map(\.description) == [
            "long.yaml:2:165: error: aliases expand this file to more than 4 MiB of text; Sluice reads at most 4 MiB, aliases counted in full"
        ])
    }

    @Test func aLargeFileWithoutAliasesSaysItIsTooLarge() {
        let text = (0..<20_000).map { "k\($0): [a, b, c, d]" }.joined(separator: "\n")
        let result = StrategyLoader.load(yaml: text, file: "large.yaml")
        #expect(result.errors.map(\.message) == ["this file holds more than 100000 nodes; Sluice reads at most 100000 nodes"])
    }

    @Test func manyAliasesThatStayWithinTheBudgetAreRead() throws {
        // The old text scan refused more than 30 aliases in a document, however little they stood for.
        let owners = (0..<40).map { "owner\($0): *team" }.joined(separator: ", ")
        let yaml = baseStrategy.replacingOccurrences(
            of: "  namespace: shop", with: "  namespace: shop\n  labels: {team: &team payments, \(owners)}")
        let strategy = try StrategyLoader.loadOne(yaml: yaml, file: "t.yaml")
        #expect(strategy.labels.count == 41)
        #expect(strategy.labels["owner39"] == "payments")
    }

    @Test func anAliasToAnAnchorOfAnEarlierDocumentCounts() {
        // Yams resolves it (its anchors outlive a document), so the budget must see it too.
        let yaml = "a: &a [x]\n---\nb: [*a]\n"
        #expect(YAMLBudget.excess(in: yaml) == nil)
        // The loader refuses it (an anchor belongs to its document), but only after composing, which the budget guards.
        let result = StrategyLoader.load(yaml: yaml, file: "two.yaml")
        #expect(result.errors.contains { $0.code == .unknownReference && $0.line == 3 }, "\(result.errors)")
    }

    @Test func manyDuplicateKeysInALargeFileStopEarly() {
        // Each duplicate costs one more composition of the whole text; a large file gets few of them.
        let padding = (0..<2_000).map { "p\($0): [\(String(repeating: "x", count: 80))]" }.joined(separator: "\n")
        let duplicates = (0..<100).map { "d\($0): 1\nd\($0): 2" }.joined(separator: "\n")
        let text = duplicates + "\n" + padding + "\n"
        let started = ContinuousClock.now
        let result = StrategyLoader.load(yaml: text, file: "dups.yaml")
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(result.errors.map(\.message) == [
            "too many duplicate keys: Sluice reports at most \((8 << 20) / text.utf8.count) in a file of \(text.utf8.count) bytes"
        ])
    }
}
