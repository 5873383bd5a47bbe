import Foundation

/// Tests/Support/servers/otlp_receiver.py on a free 127.0.0.1 port: an OTLP/HTTP trace receiver that parses every
/// body strictly as an `ExportTraceServiceRequest` (opentelemetry-proto and protobuf, in .tools/venv) and records the
/// spans it took (`spans()`), the bodies it refused (`errors()`) and each answer's status (`statuses()`).
public final class OTLPReceiver: @unchecked Sendable {
    public let port: Int
    public let directory: String
    public let process: ManagedProcess
    public let scheme: String

    /// The base URL, for `otlp.endpoint`.
    public var endpoint: String { "\(scheme)://127.0.0.1:\(port)" }

    /// A span as the receiver recorded it.
    public struct ReceivedSpan: Sendable, Decodable {
        public var traceId: String
        public var spanId: String
        public var parentSpanId: String?
        public var name: String
        /// OTLP's number: 1 internal, 2 server, 3 client.
        public var kind: Int
        /// The resource's `service.name`.
        public var service: String?
        public var scope: String
        /// String and integer attributes (others are left out here).
        public var attributes: [String: AttributeValue]
        /// OTLP's status code: 0 unset, 1 ok, 2 error.
        public var status: Int
    }

    /// An attribute's value: a string or a whole number.
    public enum AttributeValue: Sendable, Decodable, Equatable {
        case string(String)
        case int(Int)
        case other

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let int = try? container.decode(Int.self) {
                self = .int(int)
            } else if let string = try? container.decode(String.self) {
                self = .string(string)
            } else {
                self = .other
            }
        }
    }

    /// Starts the receiver (HTTPS with `tls`'s server certificate) and waits until it listens.
    public init(tls: TLSFixtures? = nil, port: Int? = nil) async throws {
        directory = try makeTemporaryDirectory("sluice-otlp")
        self.port = try port ?? freePort()
        scheme = tls == nil ? "http" : "https"
        var arguments = [repositoryRoot() + "/Tests/Support/servers/otlp_receiver.py", String(self.port), directory]
        if let tls { arguments += ["--cert", tls.serverCertificate, "--key", tls.serverKey] }
        process = try ManagedProcess(
            name: "otlp-receiver", executable: toolPath("python3"), arguments: arguments, directory: directory,
            installHint: "scripts/setup (pip install opentelemetry-proto protobuf into .tools/venv)")
        let process = process, ready = directory + "/ready"
        do {
            try await waitUntil("the OTLP receiver on port \(self.port)", timeout: .seconds(15)) {
                guard process.isRunning else { throw SupportError("OTLP receiver exited: \(process.logTail())") }
                return FileManager.default.fileExists(atPath: ready)
            }
        } catch {
            process.stop()
            throw error
        }
    }

    /// The next `count` requests are answered 503.
    public func beUnavailable(for count: Int) throws {
        try String(count).write(toFile: directory + "/unavailable", atomically: true, encoding: .utf8)
    }

    /// Every span taken so far, in the order received.
    public func spans() throws -> [ReceivedSpan] {
        try lines("spans.jsonl").map { try JSONDecoder().decode(ReceivedSpan.self, from: Data($0.utf8)) }
    }

    /// Why each refused body was refused.
    public func errors() throws -> [String] { try lines("errors.jsonl") }

    /// The status of every answer, in order.
    public func statuses() throws -> [Int] {
        try lines("requests.jsonl").map {
            try JSONDecoder().decode([String: Int].self, from: Data($0.utf8))["status"] ?? 0
        }
    }

    private func lines(_ name: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: directory + "/" + name) else { return [] }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        if data.last != UInt8(ascii: "\n"), !lines.isEmpty { lines.removeLast() }
        return lines
    }

    public func stop() { process.stop() }

    deinit { process.stop() }
}
