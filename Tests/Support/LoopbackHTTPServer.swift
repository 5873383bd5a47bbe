import Foundation

/// The Python test server in Tests/Support/servers/http_test_server.py on a free 127.0.0.1 port, plain or TLS.
/// See the script's docstring for its endpoints (/echo, /status/N, /slow, /bytes, /flaky, /hang, /state).
public final class LoopbackHTTPServer: @unchecked Sendable {
    public let port: Int
    public let directory: String
    public let process: ManagedProcess
    public let scheme: String

    /// The base URL, e.g. `http://127.0.0.1:PORT`.
    public var baseURL: String { "\(scheme)://127.0.0.1:\(port)" }

    /// Starts the server and waits until it listens. `tls` serves HTTPS with the fixture's server certificate;
    /// `requireClientCertificate` makes it demand a client certificate signed by the fixture's CA.
    public init(tls: TLSFixtures? = nil, requireClientCertificate: Bool = false) async throws {
        directory = try makeTemporaryDirectory("sluice-http-server")
        port = try freePort()
        scheme = tls == nil ? "http" : "https"
        let ready = directory + "/ready"
        var arguments = [repositoryRoot() + "/Tests/Support/servers/http_test_server.py", String(port), ready]
        if let tls {
            arguments += ["--cert", tls.serverCertificate, "--key", tls.serverKey]
            if requireClientCertificate { arguments += ["--client-ca", tls.caCertificate] }
        }
        process = try ManagedProcess(
            name: "http-test-server", executable: toolPath("python3"), arguments: arguments,
            directory: directory, installHint: "scripts/setup (creates .tools/venv with python3)")
        let process = process
        do {
            try await waitUntil("the loopback HTTP server on port \(port)", timeout: .seconds(15)) {
                guard process.isRunning else { throw SupportError("server exited: \(process.logTail())") }
                return FileManager.default.fileExists(atPath: ready)
            }
        } catch {
            process.stop()
            throw error
        }
    }

    public func stop() { process.stop() }

    deinit { process.stop() }
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made by `openssl` in a temporary
/// directory. PEM file paths are exposed; read them for inline (`*-data`) use.
public struct TLSFixtures: Sendable {
    public let directory: String
    public var caCertificate: String { directory + "/ca.pem" }
    public var serverCertificate: String { directory + "/server.pem" }
    public var serverKey: String { directory + "/server-key.pem" }
    public var clientCertificate: String { directory + "/client.pem" }
    public var clientKey: String { directory + "/client-key.pem" }
    /// A second, unrelated CA: a server certificate does not verify against it.
    public var otherCACertificate: String { directory + "/other-ca.pem" }

    public init() throws {
        directory = try makeTemporaryDirectory("sluice-tls")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl(["req", "-x509"] + ec + ["-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=Sluice Test CA"])
        try openssl(["req", "-x509"] + ec + ["-keyout", "other-ca-key.pem", "-out", "other-ca.pem", "-days", "2",
            "-subj", "/CN=Other CA"])
        try issue(name: "server", subject: "/CN=127.0.0.1",
            extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        try issue(name: "client", subject: "/CN=sluice-test-client", extensions: "extendedKeyUsage=clientAuth\n")
    }

    private func issue(name: String, subject: String, extensions: String) throws {
        try extensions.write(toFile: directory + "/\(name).ext", atomically: true, encoding: .utf8)
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "\(name)-key.pem", "-out", "\(name).csr", "-subj", subject])
        try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-out", "\(name).pem", "-days", "2", "-extfile", "\(name).ext"])
    }

    private func openssl(_ arguments: [String]) throws {
        let executable = "/usr/bin/openssl"
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw SupportError("openssl not found at \(executable); install it with: apt-get install openssl")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let log = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SupportError("openssl \(arguments.joined(separator: " ")) failed: \(String(decoding: log, as: UTF8.self))")
        }
    }
}
