import Foundation
@testable import SluiceCore
import Testing

/// `StrategyLoader.documents`: a file cut into its documents as `load` reads them, each one's own text, where it
/// starts in the file, and its key (what `sluice apply` sends, one document a request).
@Suite struct StrategyDocumentsTests {
    static func named(_ name: String) -> String {
        baseStrategy.replacingOccurrences(of: "name: checkout\n", with: "name: \(name)\n")
    }

    /// Three documents, started by a `---` with a comment after it, a plain `---` and the file's start; a `...`
    /// ends one. The CLI's own splitter took `--- # ...` for content and sent two documents as one.
    static let file =
        "# the shop's strategies\n" + named("a") + "--- # the second one\n" + named("b") + "...\n" + "---\t\n"
        + "# a comment before the third\n" + named("c")

    @Test func eachDocumentIsItsOwnTextFromItsMarkerToTheNext() throws {
        let cut = StrategyLoader.documents(yaml: Self.file, file: "s.yaml")
        #expect(cut.errors == [])
        #expect(cut.documents.map(\.key?.name) == ["a", "b", "c"])
        let lines = Self.file.split(separator: "\n", omittingEmptySubsequences: false)
        let baseLines = baseStrategy.split(separator: "\n", omittingEmptySubsequences: false).count - 1
        // The first document starts at its first node (the comment before it is nobody's); the second one's
        // `...` is its own.
        #expect(cut.documents.map(\.firstLine) == [2, 2 + baseLines, 4 + 2 * baseLines])
        #expect(cut.documents[0].text == Self.named("a"))
        #expect(cut.documents[1].text == "--- # the second one\n" + Self.named("b") + "...\n")
        #expect(cut.documents[2].text == "---\t\n# a comment before the third\n" + Self.named("c"))
        for document in cut.documents {
            let first = lines[document.firstLine - 1]
            #expect(document.text.hasPrefix(first + "\n"), "firstLine points at the text's first line")
        }
    }

    /// The rule `load` reads by and the cut agree: as many documents, the same strategies, and a position in a
    /// document's own text plus its first line is the position `load` gives in the whole file.
    @Test func theCutAgreesWithLoad() throws {
        let whole = StrategyLoader.load(yaml: Self.file, file: "s.yaml")
        #expect(whole.errors == [])
        let cut = StrategyLoader.documents(yaml: Self.file, file: "s.yaml")
        #expect(cut.documents.count == whole.strategies.count)
        for (index, document) in cut.documents.enumerated() {
            let alone = try StrategyLoader.loadOneLocated(yaml: document.text, file: "s.yaml")
            #expect(alone.strategy == whole.strategies[index])
            #expect(alone.position.line + document.firstLine - 1 == whole.positions[index].line)
        }
        // An error inside the second document, found alone, points at the same line as in the whole file.
        let broken = Self.file.replacingOccurrences(
            of: "name: b\n", with: "name: b\n").replacingOccurrences(
                of: "--- # the second one\n" + Self.named("b"),
                with: "--- # the second one\n" + Self.named("b").replacingOccurrences(of: "weight: 25", with: "weight: 250"))
        let errorInWhole = try #require(StrategyLoader.load(yaml: broken, file: "s.yaml").errors.first)
        let second = StrategyLoader.documents(yaml: broken, file: "s.yaml").documents[1]
        let errorAlone = try #require(StrategyLoader.load(yaml: second.text, file: "s.yaml").errors.first)
        #expect(errorAlone.line + second.firstLine - 1 == errorInWhole.line)
        #expect(errorAlone.path == "spec.stages[1].weight" && errorInWhole.path == errorAlone.path)
    }

    @Test func aDocumentWithoutAReadableNameHasItsReasonAtItsPlaceInTheFile() throws {
        let yaml = Self.named("a") + "---\n" + Self.named("Not_A_Label")
        let cut = StrategyLoader.documents(yaml: yaml, file: "s.yaml")
        #expect(cut.errors == [])
        #expect(cut.documents.count == 2)
        #expect(cut.documents[1].key == nil)
        let error = try #require(cut.documents[1].keyError)
        let baseLines = baseStrategy.split(separator: "\n", omittingEmptySubsequences: false).count - 1
        #expect(error.line == baseLines + 5, "metadata.name of the second document: \(error)")
        #expect(error.path == "metadata.name")
        let missing = StrategyLoader.documents(yaml: "apiVersion: sluice.dev/v1\nkind: Strategy\nspec: {}\n", file: "s.yaml")
        #expect(missing.documents.first?.keyError?.message.contains("metadata") == true)
    }

    @Test func aSyntaxErrorEndsTheFileAndKeepsTheDocumentsBeforeIt() throws {
        let yaml = Self.named("a") + "---\n" + Self.named("b") + "---\nspec: [unclosed\n---\n" + Self.named("d")
        let cut = StrategyLoader.documents(yaml: yaml, file: "s.yaml")
        #expect(cut.documents.map(\.key?.name) == ["a", "b"])
        #expect(cut.errors.count == 1)
        #expect(cut.errors.first?.code == .syntax)
        // The same as `load`: the reading ends at the syntax error.
        #expect(StrategyLoader.load(yaml: yaml, file: "s.yaml").errors.map(\.code) == [.syntax])
    }

    @Test func aStrategyDefinedTwiceIsAnErrorOfTheFileAsLoadSaysIt() throws {
        let yaml = Self.named("a") + "---\n" + Self.named("a")
        let cut = StrategyLoader.documents(yaml: yaml, file: "s.yaml")
        #expect(cut.documents.count == 1)
        let loaded = StrategyLoader.load(yaml: yaml, file: "s.yaml").errors
        #expect(cut.errors == loaded)
        #expect(cut.errors.first?.message.contains("already defined in this file at line 1") == true)
    }

    @Test func aDuplicateKeyIsLeftToTheDocumentsValidation() throws {
        let yaml = Self.named("a").replacingOccurrences(of: "kind: Strategy\n", with: "kind: Strategy\nkind: Strategy\n")
        let cut = StrategyLoader.documents(yaml: yaml, file: "s.yaml")
        #expect(cut.errors == [])
        #expect(cut.documents.first?.key?.name == "a")
        #expect(cut.documents.first?.text == yaml, "the text as written, not the renamed one the loader composes")
    }

    @Test func aFileWithNoDocumentSaysSo() {
        for yaml in ["", "# only a comment\n", "---\n---\n"] {
            let cut = StrategyLoader.documents(yaml: yaml, file: "s.yaml")
            #expect(cut.documents == [])
            #expect(cut.errors.map(\.message) == ["no strategy document in this file"], "\(yaml.debugDescription)")
        }
    }

    @Test func aFileOverTheBudgetIsOneErrorAndNoDocument() {
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + (1...20).map { "l\($0): &l\($0) [*\($0 == 1 ? "a" : "l\($0 - 1)"), *\($0 == 1 ? "a" : "l\($0 - 1)")]" }.joined(separator: "\n")
        let cut = StrategyLoader.documents(yaml: bomb, file: "s.yaml")
        #expect(cut.documents == [])
        #expect(cut.errors.count == 1)
    }

    /// An anchor belongs to its document (YAML 1.2): an alias to an earlier document's anchor is refused by `load`
    /// (so by `validate` and the API) as by the cut (so `apply` never sends a document that cannot stand alone).
    @Test func anAliasToAnEarlierDocumentsAnchorIsRefusedByBoth() throws {
        let first = Self.named("a").replacingOccurrences(of: "interval: 10s", with: "interval: &every 10s")
        let second = Self.named("b").replacingOccurrences(of: "interval: 10s", with: "interval: *every")
        let yaml = first + "---\n" + second
        let line = try #require(yaml.split(separator: "\n", omittingEmptySubsequences: false).firstIndex {
            $0.contains("*every")
        }) + 1
        let loaded = StrategyLoader.load(yaml: yaml, file: "s.yaml")
        #expect(loaded.strategies.map(\.name) == ["a"])
        #expect(loaded.errors.map { "\($0.line):\($0.column)" } == ["\(line):15"])
        #expect(loaded.errors.first?.message.contains("alias *every names an anchor of an earlier document") == true)
        let cut = StrategyLoader.documents(yaml: yaml, file: "s.yaml")
        #expect(cut.documents.map(\.key?.name) == ["a"])
        #expect(cut.errors == loaded.errors)
        // Within one document an anchor is an anchor, also when an earlier document has one of the same name.
        let labels = Self.named("a").replacingOccurrences(of: "  namespace: shop\n", with: "  namespace: shop\n  labels: {team: &t pay}\n")
            + "---\n"
            + Self.named("b").replacingOccurrences(
                of: "  namespace: shop\n", with: "  namespace: shop\n  labels: {team: &t pay, owner: *t}\n")
        #expect(StrategyLoader.load(yaml: labels, file: "s.yaml").errors == [])
        #expect(StrategyLoader.load(yaml: labels, file: "s.yaml").strategies.last?.labels == ["team": "pay", "owner": "pay"])
        #expect(StrategyLoader.documents(yaml: labels, file: "s.yaml").documents.count == 2)
    }

    /// libyaml's document lines: where a `---`, a `...`, the next document or the end of the text ends one.
    @Test(arguments: [
        ("a: 1\n", [1...1]),
        ("a: 1", [1...1]),
        ("# c\na: 1\n---\nb: 2\n", [2...2, 3...4]),
        ("--- # c\na: 1\n...\n# between\n--- {b: 2}\n", [1...3, 5...5]),
        ("---\n---\n", [1...1, 2...2]),
        ("a: |\n  ---\n  x\nb: ----\n", [1...4]),
        ("a: 1\n---\nb: [\n", [1...1]),
    ])
    func documentLinesAreLibyamls(yaml: String, lines: [ClosedRange<Int>]) {
        #expect(StrategyLoader.documentEvents(yaml).lines == lines)
    }
}
