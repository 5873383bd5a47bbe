import SluiceCore
import Testing

/// Provider text on its way into events, logs and terminals: short, one line, no escape codes.
@Suite struct SanitizedExcerptTests {
    static let a118 = String(repeating: "a", count: 118)
    static func x(_ count: Int) -> String { String(repeating: "x", count: count) }

    @Test(arguments: [
        ("  plain text \n", "plain text"),
        ("line one\nline two\ttab\r\nend", "line one\\nline two\\ttab\\r\\nend"),
        ("\u{1B}[31mred\u{1B}[0m", "\\u001B[31mred\\u001B[0m"),
        ("nul\u{0}bell\u{7}del\u{7F}c1\u{9B}", "nul\\u0000bell\\u0007del\\u007Fc1\\u009B"),
        ("\u{202E}txt.exe\u{2066}", "\\u202Etxt.exe\\u2066"),
        ("a\u{2028}b\u{2029}c", "a\\u2028b\\u2029c"),
        ("héllo ✓ 日本", "héllo ✓ 日本"),
        ("", ""),
        (" \n\t ", ""),
        (String(repeating: "x", count: 120), String(repeating: "x", count: 120)),
        (String(repeating: "x", count: 121), x(79) + "…" + x(40)),
        (a118 + "\u{1B}zz", String(a118.prefix(79)) + "…" + String(a118.prefix(32)) + "\\u001Bzz"),
        (a118 + "b\n", a118 + "b"),
    ])
    func excerptsAreShortOneLineAndFreeOfControlCharacters(text: String, expected: String) {
        let excerpt = sanitizedExcerpt(text, limit: 120)
        #expect(excerpt == expected)
        #expect(excerpt.unicodeScalars.count <= 120)
        #expect(!excerpt.unicodeScalars.contains { $0.properties.generalCategory == .control })
    }

    /// An error says what failed first and its status last: both survive the cut.
    @Test func aLongErrorKeepsItsStartAndItsEnd() {
        let body = String(repeating: "<html>", count: 50)
        let error = "caddy: PATCH http://127.0.0.1:2019/id/checkout-proxy failed: \(body) (HTTP 500)"
        let excerpt = sanitizedExcerpt(error, limit: 120)
        #expect(excerpt.hasPrefix("caddy: PATCH http://127.0.0.1:2019/id/checkout-proxy failed: <html>"))
        #expect(excerpt.hasSuffix("<html> (HTTP 500)"))
        #expect(excerpt.unicodeScalars.count == 120)
    }

    @Test func theLimitIsTheCallers() {
        #expect(sanitizedExcerpt(String(repeating: "x", count: 500)).unicodeScalars.count == 200)
        #expect(sanitizedExcerpt("timeout after 900 ms", limit: 8) == "time… ms")
        #expect(sanitizedExcerpt("abc", limit: 3) == "abc")
        #expect(sanitizedExcerpt("abc", limit: 0) == "")
        #expect(sanitizedExcerpt("abcd"[...], limit: 3) == "a…d")
    }

    /// The work is bounded by the limit, not by the text: a megabyte of junk costs no more than a line.
    @Test func aHugeTextIsCutWithoutReadingItAll() {
        let huge = String(repeating: "\u{1B}", count: 1_000_000)
        let escapes = { String(repeating: "\\u001B", count: $0) }
        #expect(sanitizedExcerpt(huge, limit: 120) == escapes(13) + "…" + escapes(6))
        #expect(sanitizedExcerpt(huge).unicodeScalars.count <= 200)
    }
}
