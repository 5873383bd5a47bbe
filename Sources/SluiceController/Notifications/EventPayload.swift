import Foundation
import SluiceCore

/// The one JSON form of an event (docs/api.md "Words"): what webhooks receive, what `GET /v1/events` lists
/// and streams (SluiceAPI's `EventView` is this type), and what `sluice events -o json` prints.
public struct EventPayload: Codable, Sendable, Hashable {
    public var seq: Int64
    /// RFC 3339, UTC, with milliseconds.
    public var time: String
    public var rollout: String
    /// `NAMESPACE/NAME`, as the CLI and the API's `strategy=` filter spell it.
    public var strategy: String
    /// The strategy's namespace alone, for receivers that route on it.
    public var namespace: String
    public var type: String
    public var stage: Int?
    public var weight: Int?
    /// `controller`, or the name of the token whose command caused the event.
    public var actor: String
    public var reason: String?
    public var message: String
    public var data: [String: JSONValue]
    /// The id of the API request that caused the event (`X-Request-Id`); absent for what Sluice did on its own.
    public var requestID: String?
    /// The W3C `traceparent` of the span that recorded the event; its trace id is the second field.
    public var traceparent: String?

    public init(_ event: Event) {
        seq = event.seq
        time = event.time.rfc3339
        rollout = event.rollout
        strategy = event.strategy.description
        namespace = event.strategy.namespace
        type = event.type.rawValue
        stage = event.stage
        weight = event.weight
        actor = event.actor
        reason = event.reason
        message = event.message
        data = event.data
        requestID = event.requestID
        traceparent = event.traceparent
    }

    /// The encoder of every event on the wire: compact, sorted keys, slashes unescaped.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The payload as compact JSON with sorted keys (one line: it is also an SSE `data:` field).
    public func json() throws -> Data {
        try Self.encoder().encode(self)
    }
}
