import Foundation
import Logging
import SluiceCore
import SluiceHTTP
import Tracing

/// How `sluice serve` writes its log (docs/operations.md, "Logs"): `text`, swift-log's `key=value` lines, or `json`,
/// one object a line.
public enum LogFormat: String, Sendable, Hashable, CaseIterable {
    case text
    case json

    /// The format when neither `--log-format` nor `logFormat:` says: text for a person at a terminal, JSON when the
    /// log goes to a file or a pipe (a container's log, which collectors parse).
    public static func `default`(stderrIsTerminal: Bool = isatty(STDERR_FILENO) == 1) -> LogFormat {
        stderrIsTerminal ? .text : .json
    }

    /// A handler of this format writing to standard error.
    public func handler(label: String, level: Logger.Level) -> any LogHandler {
        let provider = LogContext.metadataProvider
        switch self {
        case .text:
            var handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label, metadataProvider: provider, output: .standardError)
            handler.logLevel = level
            return handler
        }
    }
}

/// What every log line takes from the task it is written in: `request.id` (the API request it is for), `trace.id`
/// and `span.id` (the span it is in: a request's, a tick's, an effect batch's).
public enum LogContext {
    public static let metadataProvider = Logger.MetadataProvider {
        guard let context = ServiceContext.current else { return [:] }
        var metadata: Logger.Metadata = [:]
        if let id = context.requestID { metadata["request.id"] = .string(id) }
        if let trace = context.traceContext {
            metadata["trace.id"] = .string(trace.traceID.description)
            metadata["span.id"] = .string(trace.spanID.description)
        }
        return metadata
    }
}

/// One JSON object a line: `time` (RFC 3339, UTC, milliseconds), `level`, `message`, `logger` (the label), then
/// the metadata under its own dotted keys (`rollout.id`, `strategy.name`, `request.id`, `trace.id`, ...). A metadata
/// key that is one of those four is written as `metadata.KEY`. Strings are escaped as RFC 8259 requires, control
/// characters as `\uXXXX` (or `\n`, `\t`...), U+2028 and U+2029 too; other non-ASCII characters are written as UTF-8.
/// What is logged is what the text format logs: secrets are redacted where the line is made (`Redaction`).
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let output: Output

    /// Where lines go: one `write` per line, under a lock, so concurrent lines never interleave.
    public final class Output: Sendable {
        let write: @Sendable ([UInt8]) -> Void

        public init(write: @escaping @Sendable ([UInt8]) -> Void) { self.write = write }

        /// Standard error.
        public static let standardError = Output(write: { bytes in
            lock.withLock { _ in
                bytes.withUnsafeBytes { buffer in
                    var offset = 0
                    while offset < buffer.count {
                        let written = Foundation.write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                        if written < 0 {
                            if errno == EINTR { continue }
                            return  // nowhere to report a failing log
                        }
                        offset += written
                    }
                }
            }
        })
        private static let lock = Locked(())
    }

    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, output: Output) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let reservedKeys: Set<String> = ["time", "level", "message", "logger"]

    public func log(event: LogEvent) {
        // Precedence: the line's own metadata, then the logger's, then the task's (request and trace ids).
        var merged = metadataProvider?.get() ?? [:]
        merged.merge(metadata) { _, own in own }
        if let lineMetadata = event.metadata { merged.merge(lineMetadata) { _, own in own } }
        if let error = event.error, merged["error"] == nil { merged["error"] = .string("\(error)") }
        output.write(Self.line(time: Date(), level: event.level, message: event.message.description, label: label,
                               metadata: merged))
    }

    /// The bytes of one line, newline included.
    public static func line(time: Date, level: Logger.Level, message: String, label: String, metadata: Logger.Metadata)
        -> [UInt8]
    {
        var out: [UInt8] = []
        out.reserveCapacity(128 + message.utf8.count)
        out.append(contentsOf: #"{"time":""#.utf8)
        out.append(contentsOf: rfc3339(time).utf8)
        out.append(contentsOf: #"","level":""#.utf8)
        out.append(contentsOf: level.rawValue.utf8)
        out.append(contentsOf: #"","message":"#.utf8)
        appendString(message, to: &out)
        out.append(contentsOf: #","logger":"#.utf8)
        appendString(label, to: &out)
        for key in metadata.keys.sorted() {
            out.append(UInt8(ascii: ","))
            appendString(reservedKeys.contains(key) ? "metadata." + key : key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendValue(metadata[key]!, to: &out)
        }
        out.append(contentsOf: "}\n".utf8)
        return out
    }

    static func appendValue(_ value: Logger.MetadataValue, to out: inout [UInt8]) {
        switch value {
        case .string(let string): appendString(string, to: &out)
        case .stringConvertible(let convertible): appendString(convertible.description, to: &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendValue(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary(let dictionary):
            out.append(UInt8(ascii: "{"))
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                appendValue(dictionary[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// `string` as a JSON string: quotes and backslashes escaped, control characters (U+0000...U+001F, U+007F...U+009F)
    /// and the line separators U+2028, U+2029 as escapes, everything else as UTF-8.
    static func appendString(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out.append(contentsOf: #"\""#.utf8)
            case "\\": out.append(contentsOf: #"\\"#.utf8)
            case "\n": out.append(contentsOf: #"\n"#.utf8)
            case "\r": out.append(contentsOf: #"\r"#.utf8)
            case "\t": out.append(contentsOf: #"\t"#.utf8)
            case "\u{08}": out.append(contentsOf: #"\b"#.utf8)
            case "\u{0C}": out.append(contentsOf: #"\f"#.utf8)
            case "\u{00}"..."\u{1F}", "\u{7F}"..."\u{9F}", "\u{2028}", "\u{2029}":
                let hex = String(scalar.value, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
            default: out.append(contentsOf: String(scalar).utf8)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// `2026-12-07T03:12:24.123Z`.
    static func rfc3339(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(milliseconds % 1000)
        let fraction = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):"
            + "\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
    }
}
