import Foundation

/// Small readers of ASCII text on its UTF-8 bytes, for the per-request paths where walking Characters (grapheme
/// breaking and Unicode properties at every one) or Foundation's string search was most of the cost. Each is meant
/// for text already known to be ASCII (`all`): there every byte is one scalar and only CR LF joins two into one
/// Character, so what these find and compare is what the Characters' versions do (the callers fall back to those
/// for any other text). They take concrete types, not generic collections: called from another module, a generic
/// one ran unspecialised, through witness tables at every byte.
package enum ASCIIBytes {
    /// Whether every byte is ASCII (below 0x80).
    package static func all(_ bytes: [UInt8]) -> Bool {
        bytes.allSatisfy { $0 < 0x80 }
    }

    /// Whether `text` is ASCII.
    package static func all(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 < 0x80 }
    }

    /// The end of the first "://" in `bytes`.
    package static func schemeSeparatorEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 3 else { return nil }
        for start in 0...(bytes.count - 3)
        where bytes[start] == UInt8(ascii: ":") && bytes[start + 1] == UInt8(ascii: "/")
            && bytes[start + 2] == UInt8(ascii: "/")
        {
            return start + 3
        }
        return nil
    }

    /// The ASCII `parts`, joined, as a String with A-Z lowered (what `lowercased()` does to ASCII).
    package static func lowercased(_ parts: ArraySlice<UInt8>...) -> String {
        var lowered: [UInt8] = []
        lowered.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts {
            for byte in part { lowered.append(lower(byte)) }
        }
        return String(decoding: lowered, as: UTF8.self)
    }

    /// Whether ASCII `bytes` are `lowercase` (lower-case ASCII) with their A-Z lowered.
    package static func equalsLowercased(_ bytes: ArraySlice<UInt8>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        return zip(bytes, UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount))
            .allSatisfy { lower($0) == $1 }
    }

    /// Whether two header field names are the same without case: on the bytes when both are ASCII (every name
    /// Sluice sends or looks up), by Foundation's `caseInsensitiveCompare` otherwise (~1 k instructions a pair).
    package static func sameFieldName(_ name: String, _ other: String) -> Bool {
        guard all(name), all(other) else { return name.caseInsensitiveCompare(other) == .orderedSame }
        return name.utf8.elementsEqual(other.utf8) { lower($0) == lower($1) }
    }

    /// Where the parts of an ASCII URL are: the end of its `scheme://` (nil without one), where its host starts
    /// (after the authority's last "@", the user info) and where its authority ends (the first "/", "?" or "#"
    /// after the scheme); without a scheme the authority starts at the beginning.
    package static func urlAuthority(_ bytes: [UInt8]) -> (schemeEnd: Int?, hostStart: Int, end: Int) {
        let schemeEnd = schemeSeparatorEnd(bytes)
        var hostStart = schemeEnd ?? 0
        var end = hostStart
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "/") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") { break }
            end += 1
            if byte == UInt8(ascii: "@") { hostStart = end }
        }
        return (schemeEnd, hostStart, end)
    }

    /// `byte` with A-Z lowered.
    @inline(__always) static func lower(_ byte: UInt8) -> UInt8 {
        (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
    }
}
