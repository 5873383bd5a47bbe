import Foundation

/// Tests/Support/servers/admin_proxy.py on a free 127.0.0.1 port in front of a real Caddy's admin API: it passes
/// everything through until `failWrites(true)`, then answers HTTP 500 to every write (reads still reach Caddy),
/// as an admin API whose config store fails would. It records every request it receives (`requests()`).
public final class AdminProxy: @unchecked Sendable {
    public let port: Int
    public let directory: String
    public let process: ManagedProcess

    /// `http://127.0.0.1:PORT`, to give Sluice as the router's `adminURL`.
    public var url: String { "http://127.0.0.1:\(port)" }

    public init(upstream: String) async throws {
        directory = try makeTemporaryDirectory("sluice-admin-proxy")
        port = try freePort()
        process = try ManagedProcess(
            name: "admin-proxy", executable: toolPath("python3"),
            arguments: [repositoryRoot() + "/Tests/Support/servers/admin_proxy.py", String(port), upstream, directory],
            directory: directory, installHint: "scripts/setup (creates .tools/venv with python3)")
        let process = process
        let ready = directory + "/ready"
        do {
            try await waitUntil("the admin proxy on port \(port)", timeout: .seconds(15)) {
                guard process.isRunning else { throw SupportError("proxy exited: \(process.logTail())") }
                return FileManager.default.fileExists(atPath: ready)
            }
        } catch {
            process.stop()
            throw error
        }
    }

    /// From now on writes answer 500 (`true`) or reach Caddy again (`false`).
    public func failWrites(_ fail: Bool) throws {
        let flag = directory + "/fail-writes"
        if fail {
            try Data().write(to: URL(fileURLWithPath: flag))
        } else if FileManager.default.fileExists(atPath: flag) {
            try FileManager.default.removeItem(atPath: flag)
        }
    }

    /// A request the proxy received, as it came.
    public struct RecordedRequest: Sendable, Decodable {
        public var method: String
        public var path: String
        /// Header values by lowercased name.
        public var headers: [String: String]
    }

    /// Every request received so far, oldest first (a line still being written is left for the next call).
    public func requests() throws -> [RecordedRequest] {
        guard let data = FileManager.default.contents(atPath: directory + "/requests.jsonl") else { return [] }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        if data.last != UInt8(ascii: "\n"), !lines.isEmpty { lines.removeLast() }
        return try lines.map { try JSONDecoder().decode(RecordedRequest.self, from: Data($0.utf8)) }
    }

    /// Requests other than GET that reached the proxy so far (passed through or refused): writes to the router.
    public func writes() throws -> Int {
        try requests().count { $0.method != "GET" }
    }

    public func stop() {
        process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { process.stop() }
}
