@testable import SluiceHTTP
import Testing

/// Header lines as curl hands them over, parsed on bytes.
@Suite struct CurlHeaderLineTests {
    static let fields: [(String, String?, String?)] = [
        ("Etag: \"svc 1\"\r\n", "Etag", "\"svc 1\""),
        ("X-Tab:\t v \t\r\n", "X-Tab", "v"),
        ("Empty:\r\n", "Empty", ""),
        ("Empty:   \n", "Empty", ""),
        ("Location: http://a/b?c=d:e\r\n", "Location", "http://a/b?c=d:e"),
        ("Note: café au lait\r\n", "Note", "café au lait"),
        ("no colon here\r\n", nil, nil),
    ]

    @Test(arguments: fields)
    func field(line: String, name: String?, value: String?) {
        var bytes = Array(line.utf8)
        let field = bytes.withUnsafeMutableBytes { CurlTransfer.headerField(UnsafeRawBufferPointer($0)) }
        #expect(field?.name == name)
        #expect(field?.value == value)
    }

    @Test(arguments: [("\r\n", true), ("\n", true), ("\r\n\r\n", false), (" \r\n", false), ("", false)])
    func blankLine(line: String, blank: Bool) {
        let bytes = Array(line.utf8)
        #expect(bytes.withUnsafeBytes { CurlTransfer.isBlankLine($0) } == blank)
    }

    /// Methods, URLs, names and values for `HeaderText`: ASCII (its byte path) and not (its Character path), with
    /// every ASCII whitespace and line break, CR LF, the Unicode ones, and letters that case-map out of ASCII.
    static let texts: [String] = [
        "", "GET", "get", "Get", "GE T", "G3T", "POST\r\n", "ß", "straße", "ǅ", "ﬀ", "X-Note", "traceparent",
        "X Bad", "X-Bad:", "X-Bad\t", "a\nb", "a\u{0B}b", "a\u{0C}b", "a\rb", "a\r\nb", "\u{1C}", "\u{1F}", "\u{7F}",
        "X-Bäd\u{A0}", "a\u{85}b", "café\u{2028}x", "t\u{2029}x", "café ☕ \u{A0}", "e\u{301}",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "http://127.0.0.1:9090/api/v1/query?query=up", "HTTPS://User:pw@Example.com:8443#x", "https:x", "http:/x",
        "ftp://x", "://x", ":http://x", "::https://a", ":::", "http", "httpx://a", "Http://a", "http:foo://b",
        "hTTp\r\n://a", "ｈttp://a", "http://ü.example/", "https://a/é",
    ]

    @Test("HeaderText answers as the Characters do, on ASCII bytes and on any other text")
    func headerTextAsCharacters() {
        for text in Self.texts {
            let upper = text.uppercased()
            #expect(
                HeaderText.isMethod(upper) == (!upper.isEmpty && upper.allSatisfy { $0.isLetter && $0.isASCII }),
                "\(upper.debugDescription)")
            let scheme = text.split(separator: ":", maxSplits: 1).first?.lowercased()
            #expect(
                HeaderText.hasHTTPScheme(text) == ((scheme == "http" || scheme == "https") && text.contains("://")),
                "\(text.debugDescription)")
            #expect(
                HeaderText.isFieldName(text)
                    == (!text.isEmpty && !text.contains(where: { $0 == ":" || $0.isWhitespace || $0.isNewline })),
                "\(text.debugDescription)")
            #expect(HeaderText.hasLineBreak(text) == text.contains(where: \.isNewline), "\(text.debugDescription)")
        }
    }
}
