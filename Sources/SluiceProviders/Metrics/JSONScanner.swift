/// Malformed JSON, or JSON of another shape than a decoder reads: what was wrong and where (1-based line and
/// column, counted in bytes).
struct JSONScanError: Error, Sendable, Hashable, CustomStringConvertible {
    var message: String
    var line: Int
    var column: Int

    var description: String { "\(message) at line \(line), column \(column)" }
}

/// A forward-only reader of JSON text for a decoder of one exact shape (RFC 8259): the decoder pulls the values it
/// wants and skips the rest, which are still checked, so a malformed document is an error wherever the fault is.
/// It builds no tree: reading a small answer costs a few thousand instructions, where Foundation's `JSONDecoder`
/// costs hundreds of thousands on Linux.
///
/// Objects and arrays are read with a cursor: `enterObject()` then `nextKey(in:)` until it returns nil, reading
/// (or skipping) each member's value in between; `enterArray()` then `nextElement(in:)` likewise.
struct JSONScanner {
    /// The kinds of JSON values, for `peek()` and for saying what was found instead of what was expected.
    enum Kind: String, Sendable {
        case object = "an object"
        case array = "an array"
        case string = "a string"
        case number = "a number"
        case bool = "a boolean"
        case null = "null"
    }

    /// Where a decoder is inside one object or array.
    struct Cursor {
        /// Members or elements read so far.
        fileprivate(set) var count = 0
    }

    /// Deeper nesting than this is refused rather than recursed into.
    static let maximumDepth = 128

    private let bytes: UnsafeRawBufferPointer
    private var offset = 0
    private var depth = 0

    /// A scanner of `bytes`, which must outlive it (`Data.withUnsafeBytes`).
    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    // MARK: - Values

    /// The kind of the next value, without reading it.
    mutating func peek() throws(JSONScanError) -> Kind {
        skipWhitespace()
        guard offset < bytes.count else { throw error("unexpected end of input, expected a value") }
        switch bytes[offset] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: throw error("unexpected \(found()), expected a value")
        }
    }

    /// Reads a string; `what` names the value in the error when it is something else.
    mutating func readString(_ what: @autoclosure () -> String) throws(JSONScanError) -> String {
        let kind = try peek()
        guard kind == .string else { throw error("\(what()) must be a string, not \(kind.rawValue)") }
        return try stringToken()
    }

    /// Reads a string, or null as nil; `what` names the value in the error when it is something else.
    mutating func readOptionalString(_ what: @autoclosure () -> String) throws(JSONScanError) -> String? {
        if try peek() == .null {
            try literal("null")
            return nil
        }
        return try readString(what())
    }

    /// Reads null and returns true, or returns false leaving any other value unread.
    mutating func readNull() throws(JSONScanError) -> Bool {
        guard try peek() == .null else { return false }
        try literal("null")
        return true
    }

    /// Skips one value of any kind, checking that it is well formed.
    mutating func skipValue() throws(JSONScanError) {
        switch try peek() {
        case .object:
            var members = try enterObject()
            while try nextKey(in: &members) != nil { try skipValue() }
        case .array:
            var elements = try enterArray()
            while try nextElement(in: &elements) { try skipValue() }
        case .string:
            _ = try stringToken()
        case .number:
            try numberToken()
        case .bool:
            try literal(bytes[offset] == UInt8(ascii: "t") ? "true" : "false")
        case .null:
            try literal("null")
        }
    }

    /// Checks that nothing but whitespace follows the document.
    mutating func finish() throws(JSONScanError) {
        skipWhitespace()
        guard offset == bytes.count else { throw error("unexpected \(found()) after the end of the document") }
    }

    // MARK: - Objects and arrays

    /// Reads `{`; `what` names the value in the error when it is something else.
    mutating func enterObject(_ what: @autoclosure () -> String = "the value") throws(JSONScanError) -> Cursor {
        try enter(.object, what())
    }

    /// The next member's key, leaving the scanner at its value (which the caller must read or skip); nil after
    /// the object's closing `}`.
    mutating func nextKey(in cursor: inout Cursor) throws(JSONScanError) -> String? {
        if try closes(UInt8(ascii: "}"), after: cursor.count, "an object member") { return nil }
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else {
            throw error("unexpected \(found()), expected a string key")
        }
        let key = try stringToken()
        skipWhitespace()
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else {
            throw error("unexpected \(found()), expected ':' after the key \"\(key)\"")
        }
        offset += 1
        cursor.count += 1
        return key
    }

    /// Reads `[`; `what` names the value in the error when it is something else.
    mutating func enterArray(_ what: @autoclosure () -> String = "the value") throws(JSONScanError) -> Cursor {
        try enter(.array, what())
    }

    /// True when another element follows (the caller must read or skip it; its index is `cursor.count - 1`);
    /// false after the array's closing `]`.
    mutating func nextElement(in cursor: inout Cursor) throws(JSONScanError) -> Bool {
        if try closes(UInt8(ascii: "]"), after: cursor.count, "an array element") { return false }
        cursor.count += 1
        return true
    }

    private mutating func enter(_ container: Kind, _ what: String) throws(JSONScanError) -> Cursor {
        let kind = try peek()
        guard kind == container else { throw error("\(what) must be \(container.rawValue), not \(kind.rawValue)") }
        guard depth < Self.maximumDepth else { throw error("nested deeper than \(Self.maximumDepth) levels") }
        depth += 1
        offset += 1
        return Cursor()
    }

    /// True past the container's closing byte `close`; false past the `,` before its next item (none is needed
    /// before the first), or at the first item.
    private mutating func closes(_ close: UInt8, after count: Int, _ item: String) throws(JSONScanError) -> Bool {
        skipWhitespace()
        if offset < bytes.count, bytes[offset] == close {
            offset += 1
            depth -= 1
            return true
        }
        guard count > 0 else { return false }
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: ",") else {
            throw error("unexpected \(found()), expected ',' or '\(UnicodeScalar(close))' after \(item)")
        }
        offset += 1
        skipWhitespace()
        return false
    }

    // MARK: - Errors

    /// An error at the scanner's position: `message` and the line and column.
    func error(_ message: String) -> JSONScanError {
        var line = 1
        var lineStart = 0
        for index in 0..<min(offset, bytes.count) where bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        return JSONScanError(message: message, line: line, column: offset - lineStart + 1)
    }

    // MARK: - Tokens

    private mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): offset += 1
            default: return
            }
        }
    }

    /// What is at the scanner's position, for an error message.
    private func found() -> String {
        guard offset < bytes.count else { return "end of input" }
        let byte = bytes[offset]
        guard byte >= 0x20, byte < 0x7F else { return "byte 0x" + String(byte, radix: 16, uppercase: true) }
        return "'" + String(UnicodeScalar(byte)) + "'"
    }

    private mutating func literal(_ word: StaticString) throws(JSONScanError) {
        let length = word.utf8CodeUnitCount
        let matches =
            offset + length <= bytes.count
            && word.withUTF8Buffer { expected in
                (0..<length).allSatisfy { bytes[offset + $0] == expected[$0] }
            }
        guard matches else { throw error("unexpected \(found()), expected \(word)") }
        offset += length
        guard offset >= bytes.count || !Self.isAlphanumeric(bytes[offset]) else {
            throw error("unexpected \(found()) after \(word)")
        }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// A number, checked against JSON's grammar (`-? int frac? exp?`); its value is not needed by any decoder yet.
    private mutating func numberToken() throws(JSONScanError) {
        if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        guard offset < bytes.count, Self.isDigit(bytes[offset]) else {
            throw error("unexpected \(found()) in a number, expected a digit")
        }
        if bytes[offset] == UInt8(ascii: "0") {
            offset += 1
            if offset < bytes.count, Self.isDigit(bytes[offset]) { throw error("a number with a leading zero") }
        } else {
            skipDigits()
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            offset += 1
            guard offset < bytes.count, Self.isDigit(bytes[offset]) else {
                throw error("unexpected \(found()) in a number, expected a digit after '.'")
            }
            skipDigits()
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") {
                offset += 1
            }
            guard offset < bytes.count, Self.isDigit(bytes[offset]) else {
                throw error("unexpected \(found()) in a number, expected a digit in the exponent")
            }
            skipDigits()
        }
        guard offset >= bytes.count || !Self.isAlphanumeric(bytes[offset]) else {
            throw error("unexpected \(found()) in a number")
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private mutating func skipDigits() {
        while offset < bytes.count, Self.isDigit(bytes[offset]) { offset += 1 }
    }

    /// A string at the scanner's `"`, unescaped and checked to be UTF-8.
    private mutating func stringToken() throws(JSONScanError) -> String {
        let start = offset
        offset += 1
        let contentStart = offset
        // Most strings have no escape: their bytes are the string's UTF-8. ASCII needs no validation (which costs
        // more than the rest of the scan).
        var isASCII = true
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                let content = UnsafeRawBufferPointer(rebasing: bytes[contentStart..<offset])
                let text = isASCII ? String(decoding: content, as: UTF8.self) : try utf8String(content, at: start)
                offset += 1
                return text
            }
            if byte >= 0x80 { isASCII = false }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw controlCharacter(byte) }
            offset += 1
        }
        var unescaped = Array(bytes[contentStart..<offset])
        while offset < bytes.count {
            let byte = bytes[offset]
            switch byte {
            case UInt8(ascii: "\""):
                let text = try utf8String(unescaped, at: start)
                offset += 1
                return text
            case UInt8(ascii: "\\"):
                try escape(into: &unescaped)
            case ..<0x20:
                throw controlCharacter(byte)
            default:
                unescaped.append(byte)
                offset += 1
            }
        }
        offset = start
        throw error("a string that does not end")
    }

    private func controlCharacter(_ byte: UInt8) -> JSONScanError {
        error("a control character (byte 0x\(String(byte, radix: 16))) in a string")
    }

    private func utf8String(_ buffer: some Collection<UInt8>, at start: Int) throws(JSONScanError) -> String {
        guard let text = String(validating: buffer, as: UTF8.self) else {
            var scanner = self
            scanner.offset = start
            throw scanner.error("a string that is not valid UTF-8")
        }
        return text
    }

    /// One escape sequence at the scanner's `\`, appended to `unescaped` as UTF-8.
    private mutating func escape(into unescaped: inout [UInt8]) throws(JSONScanError) {
        let escapeStart = offset
        offset += 1
        guard offset < bytes.count else { throw error("a string that does not end") }
        let byte = bytes[offset]
        offset += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): unescaped.append(byte)
        case UInt8(ascii: "b"): unescaped.append(0x08)
        case UInt8(ascii: "f"): unescaped.append(0x0C)
        case UInt8(ascii: "n"): unescaped.append(0x0A)
        case UInt8(ascii: "r"): unescaped.append(0x0D)
        case UInt8(ascii: "t"): unescaped.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hexQuad()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low one; together they are one scalar.
                let low: UInt32?
                let escaped = offset + 1 < bytes.count && bytes[offset] == UInt8(ascii: "\\")
                if escaped, bytes[offset + 1] == UInt8(ascii: "u") {
                    offset += 2
                    low = try hexQuad()
                } else {
                    low = nil
                }
                guard let low, (0xDC00..<0xE000).contains(low) else {
                    offset = escapeStart
                    throw error("a \\u escape of a high surrogate without its low surrogate")
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                offset = escapeStart
                throw error("a \\u escape of a low surrogate without its high surrogate")
            }
            // Not a surrogate, or a pair combined: always a valid scalar.
            unescaped.append(contentsOf: Unicode.Scalar(scalar)!.utf8)
        default:
            offset = escapeStart
            throw error("an unknown escape \\\(String(UnicodeScalar(byte))) in a string")
        }
    }

    private mutating func hexQuad() throws(JSONScanError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard offset < bytes.count, let digit = Self.hexDigit(bytes[offset]) else {
                throw error("unexpected \(found()) in a \\u escape, expected a hex digit")
            }
            value = value << 4 | digit
            offset += 1
        }
        return value
    }

    private static func hexDigit(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
