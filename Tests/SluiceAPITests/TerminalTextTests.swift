import Foundation
import SluiceAPI
import Testing

/// `visibleControls` and `TerminalText`: what reaches a terminal through the CLI's one output path.
struct TerminalTextTests {
    @Test(arguments: [
        ("\u{1B}]0;owned\u{07}", #"\u001B]0;owned\u0007"#),  // ESC (an OSC retitling the window), BEL
        ("ok\rFAKE", #"ok\u000DFAKE"#),  // CR: overwriting the line already printed
        ("a\r\nb", #"a\u000D\u000Ab"#),  // CR LF is one Character; both scalars are caught
        ("nul\u{0}end", #"nul\u0000end"#),
        ("\u{9B}31m red", #"\u009B31m red"#),  // C1 CSI, which some terminals obey without an ESC
        ("\u{85}next", #"\u0085next"#),  // C1 NEL
        ("del\u{7F}", #"del\u007F"#),
        ("tab\there", #"tab\u0009here"#),
        ("plain ünïcode → ok", "plain ünïcode → ok"),
    ])
    func everyControlCharacterIsMadeVisible(input: String, shown: String) {
        #expect(visibleControls(input) == shown)
        #expect(!visibleControls(input).unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
    }

    @Test
    func newlinesStayOnlyWhenAsked() {
        #expect(visibleControls("a\nb") == #"a\u000Ab"#)
        #expect(visibleControls("a\nb\r\n\u{1B}", keepingNewlines: true) == "a\nb\\u000D\n\\u001B")
    }

    @Test
    func theCLIsOwnTextStaysAndInterpolatedValuesAreEscaped() {
        let value = "v2\u{1B}[2J\n"
        let text: TerminalText = "\u{1B}[2Arollout \(value) started\n"
        #expect(text.description == "\u{1B}[2Arollout v2\\u001B[2J\\u000A started\n")
        let block = "a\u{7}\nb\n"
        let lines: TerminalText = "\(lines: block)end\n"
        #expect(lines.description == "a\\u0007\nb\nend\n")
        let nested: TerminalText = "[\(text)]"
        #expect(nested.description == "[" + text.description + "]", "already safe text is not escaped twice")
    }

    @Test
    func aJSONDocumentPassedThroughStaysValidAndLossless() throws {
        // JSONEncoder leaves DEL and C1 raw; their visible escape is also a JSON escape of the same character.
        let json = #"{"version":"v\#u{7F}\#u{9B}2"}"#
        let shown = visibleControls(json, keepingNewlines: true)
        #expect(shown == #"{"version":"v\u007F\u009B2"}"#)
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(shown.utf8))
        #expect(decoded["version"] == "v\u{7F}\u{9B}2")
    }
}
