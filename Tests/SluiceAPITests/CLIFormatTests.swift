import Foundation
import SluiceAPI
import Testing
import Yams

/// The pure parts of what the CLI prints: YAML numbers and the apply diff.
struct CLIFormatTests {
    struct Numbers: Codable, Equatable {
        var weight: Int
        var hold: Double
        var value: Double
        var tiny: Double
        var big: Double
        var negative: Double
        var version: String
    }

    @Test
    func yamlNumbersArePlainDecimals() throws {
        let numbers = Numbers(
            weight: 25, hold: 30, value: 25.4, tiny: 0.00001, big: 1.5e20, negative: -0.25, version: "3e+1")
        let text = try yamlDocument(numbers)
        #expect(text.contains("weight: 25\n"))
        #expect(text.contains("hold: 30\n"), "\(text)")
        #expect(text.contains("value: 25.4\n"), "\(text)")
        #expect(text.contains("tiny: 0.00001\n"), "\(text)")
        #expect(text.contains("big: 150000000000000000000\n"), "\(text)")
        #expect(text.contains("negative: -0.25\n"), "\(text)")
        #expect(text.contains("version: '3e+1'\n") || text.contains("version: \"3e+1\"\n"), "a string stays a string: \(text)")
        #expect(try YAMLDecoder().decode(Numbers.self, from: text) == numbers, "reads back to the same values")
    }

    @Test
    func theApplyDiffPrintsTheOldLineBeforeTheNewOne() {
        let old = "stages:\n  - {name: canary, weight: 10}\n  - {name: full, weight: 100}\n"
        let new = "stages:\n  - {name: canary, weight: 20}\n  - {name: full, weight: 100}\n"
        #expect(
            TextDiff.unified(old: old, new: new)
                == "  stages:\n-   - {name: canary, weight: 10}\n+   - {name: canary, weight: 20}\n    - {name: full, weight: 100}\n  \n")
        #expect(TextDiff.unified(old: "a\nb\n", new: "a\nc\nd\n") == "  a\n- b\n+ c\n+ d\n  \n")
        #expect(TextDiff.unified(old: "a\n", new: "a\n") == "")
    }

    /// The server diffs every apply: a large strategy with one changed line must not cost old × new lines of time and
    /// memory (the LCS table this replaced needed 20,000² cells here: 3.2 GB).
    @Test
    func theApplyDiffOfALargeStrategyCostsTheSizeOfTheChange() {
        let lines = (0..<20_000).map { "  - {name: check-\($0), threshold: 0.5}" }
        var changed = lines
        changed[10_000] = "  - {name: check-10000, threshold: 0.25}"
        let start = ContinuousClock.now
        let diff = TextDiff.unified(old: lines.joined(separator: "\n"), new: changed.joined(separator: "\n"))
        let elapsed = ContinuousClock.now - start
        #expect(
            diff == """
                  - {name: check-9998, threshold: 0.5}
                  - {name: check-9999, threshold: 0.5}
              -   - {name: check-10000, threshold: 0.5}
              +   - {name: check-10000, threshold: 0.25}
                  - {name: check-10001, threshold: 0.5}
                  - {name: check-10002, threshold: 0.5}

              """)
        #expect(elapsed < .seconds(2), "diffing 20,000 lines with one change took \(elapsed)")
    }
}
