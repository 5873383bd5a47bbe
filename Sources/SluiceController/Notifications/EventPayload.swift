import Foundation
import SluiceCore

/// The JSON form of an event (cli-and-api.md "event"): what webhooks receive.
public struct EventPayload: Codable, Sendable, Hashable {
    public var seq: Int64
    /// RFC 3339, UTC, with milliseconds.
    public var time: String
    public var rollout: String
    public var strategy: String
    public var namespace: String
    public var type: String
    public var stage: Int?
    public var weight: Int?
    public var actor: String
    public var reason: String?
    public var message: String
    public var data: [String: JSONValue]

    public init(_ event: Event) {
        seq = event.seq
        time = event.time.rfc3339
        rollout = event.rollout
        strategy = event.strategy.name
        namespace = event.strategy.namespace
        type = event.type.rawValue
        stage = event.stage
        weight = event.weight
        actor = event.actor
        reason = event.reason
        message = event.message
        data = event.data
    }

    /// The payload as compact JSON with sorted keys.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
