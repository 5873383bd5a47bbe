import Foundation

/// One dispatched Server-Sent Event.
public struct ServerSentEvent: Sendable, Hashable {
    /// The stream's last event ID when this event was dispatched (`id:` of this or an earlier event).
    public var id: String?
    /// The `event:` field, `message` when absent.
    public var type: String
    /// The `data:` lines joined by `\n`.
    public var data: String

    public init(id: String?, type: String = "message", data: String) {
        self.id = id
        self.type = type
        self.data = data
    }
}

/// An incremental `text/event-stream` parser (the WHATWG HTML "event stream interpretation"): feed it chunks as
/// they arrive, split anywhere, even inside a line or between the CR and LF of one line ending.
public struct ServerSentEventParser: Sendable {
    /// The `id:` last seen; what a reconnecting client sends back as `Last-Event-ID`.
    public private(set) var lastEventID: String?
    /// The reconnection delay the server asked for with `retry:`, if any.
    public private(set) var retry: Duration?

    private var line: [UInt8] = []
    private var afterCR = false
    private var atStart = true
    private var type = ""
    private var data = ""
    private var hasData = false

    public init() {}

    /// Parses `chunk` and returns the events it completes, in order.
    public mutating func feed(_ chunk: some Sequence<UInt8>) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        for byte in chunk {
            if afterCR {
                afterCR = false
                if byte == 0x0A { continue }  // the LF of a CRLF whose CR ended the previous chunk
            }
            switch byte {
            case 0x0D:
                afterCR = true
                if let event = endLine() { events.append(event) }
            case 0x0A:
                if let event = endLine() { events.append(event) }
            default:
                line.append(byte)
            }
        }
        return events
    }

    private mutating func endLine() -> ServerSentEvent? {
        var bytes = line[...]
        line.removeAll(keepingCapacity: true)
        if atStart {
            atStart = false
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }  // a UTF-8 BOM
        }
        if bytes.isEmpty { return dispatch() }
        if bytes.first == UInt8(ascii: ":") { return nil }  // a comment (keep-alive)
        let field: String
        var valueText = ""
        if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            field = String(decoding: bytes[..<colon], as: UTF8.self)
            var rest = bytes[(colon + 1)...]
            if rest.first == UInt8(ascii: " ") { rest = rest.dropFirst() }
            valueText = String(decoding: rest, as: UTF8.self)
        } else {
            field = String(decoding: bytes, as: UTF8.self)
        }
        switch field {
        case "event": type = valueText
        case "data":
            if hasData { data += "\n" }
            data += valueText
            hasData = true
        case "id" where !valueText.contains("\u{0}"): lastEventID = valueText
        case "retry":
            if !valueText.isEmpty, valueText.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let ms = Int(valueText) {
                retry = .milliseconds(ms)
            }
        default: break  // unknown fields are ignored
        }
        return nil
    }

    private mutating func dispatch() -> ServerSentEvent? {
        defer {
            type = ""
            data = ""
            hasData = false
        }
        guard hasData else { return nil }
        return ServerSentEvent(id: lastEventID, type: type.isEmpty ? "message" : type, data: data)
    }
}
