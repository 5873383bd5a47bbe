import Foundation
import SluiceCore

/// A coding key for any field name: lets a type decode the fields it knows and keep the rest.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where Key == AnyKey {
    /// A required field.
    func value<T: Decodable>(_ key: String) throws -> T { try decode(T.self, forKey: AnyKey(key)) }

    /// An optional field (absent or null is nil).
    func optional<T: Decodable>(_ key: String) throws -> T? { try decodeIfPresent(T.self, forKey: AnyKey(key)) }

    /// Every field not in `known`, kept as JSON so a round trip loses nothing Sluice does not model.
    func unknown(except known: Set<String>) throws -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for key in allKeys where !known.contains(key.stringValue) {
            fields[key.stringValue] = try decode(JSONValue.self, forKey: key)
        }
        return fields
    }
}

extension KeyedEncodingContainer where Key == AnyKey {
    /// Writes `value` under `key`; nil writes nothing.
    mutating func put<T: Encodable>(_ value: T?, _ key: String) throws {
        if let value { try encode(value, forKey: AnyKey(key)) }
    }

    /// Writes the fields a type kept without modelling them.
    mutating func put(unknown fields: [String: JSONValue]) throws {
        for (key, value) in fields { try encode(value, forKey: AnyKey(key)) }
    }
}

extension JSONValue {
    /// The JSON form of `value`, as the API server would receive it.
    static func encoding<T: Encodable>(_ value: T) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(value))
    }

    /// The RFC 7386 merge patch that turns `old` into `new`; nil when they are equal. Arrays are replaced whole,
    /// as merge patch requires, so a changed list is sent complete (with every field it had).
    static func mergePatch(from old: JSONValue, to new: JSONValue) -> JSONValue? {
        guard case .object(let before) = old, case .object(let after) = new else {
            return old == new ? nil : new
        }
        var patch: [String: JSONValue] = [:]
        for (key, value) in after {
            if let previous = before[key] {
                if let change = mergePatch(from: previous, to: value) { patch[key] = change }
            } else {
                patch[key] = value
            }
        }
        for key in before.keys where after[key] == nil { patch[key] = .null }
        return patch.isEmpty ? nil : .object(patch)
    }

    /// The member `key` of an object.
    subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    /// The text of a string value.
    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}
