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
}
