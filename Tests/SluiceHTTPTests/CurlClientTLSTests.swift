import Foundation
import SluiceHTTP
import SluiceTestSupport
import Testing

@Suite("CurlClient over TLS with an openssl-made CA")
struct CurlClientTLSTests {
    private func pem(_ path: String) throws -> TLSOptions.Source {
        .pem(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test("the server verifies against the CA given as a file or inline PEM")
    func trustedCA() async throws {
        let tls = try TLSFixtures()
        let server = try await LoopbackHTTPServer(tls: tls)
        defer { server.stop() }
        let client = try CurlClient()
        for ca in [TLSOptions.Source.file(tls.caCertificate), try pem(tls.caCertificate)] {
            let response = try await client.execute(HTTPRequest(url: server.baseURL + "/echo", tls: TLSOptions(ca: ca)))
            #expect(response.status == 200)
        }
        // localhost is in the certificate too; the name is checked, not just the chain.
        let byName = try await client.execute(HTTPRequest(
            url: "https://localhost:\(server.port)/echo", tls: TLSOptions(ca: .file(tls.caCertificate))))
        #expect(byName.status == 200)
    }

    @Test("an unknown CA fails with tlsFailed: no CA given, or another CA")
    func untrustedCA() async throws {
        let tls = try TLSFixtures()
        let server = try await LoopbackHTTPServer(tls: tls)
        defer { server.stop() }
        let client = try CurlClient()
        for options in [TLSOptions(), TLSOptions(ca: .file(tls.otherCACertificate)), TLSOptions(ca: try pem(tls.otherCACertificate))] {
            let error = await #expect(throws: HTTPError.self) {
                try await client.execute(HTTPRequest(url: server.baseURL + "/echo", tls: options, retry: .none))
            }
            #expect(error?.code == .tlsFailed)
            #expect(error?.message.isEmpty == false)
        }
    }

    @Test("a missing CA file is a clear invalidRequest naming the file")
    func missingCAFile() async throws {
        let error = await #expect(throws: HTTPError.self) {
            try await CurlClient().execute(HTTPRequest(
                url: "https://127.0.0.1:1/", tls: TLSOptions(ca: .file("/nonexistent/ca.pem"))))
        }
        #expect(error?.code == .invalidRequest)
        #expect(error?.message.contains("/nonexistent/ca.pem") == true)
    }

    @Test("insecureSkipVerify connects without a CA and warns once")
    func insecure() async throws {
        let tls = try TLSFixtures()
        let server = try await LoopbackHTTPServer(tls: tls)
        defer { server.stop() }
        let warnings = Warnings()
        let client = try CurlClient(warn: { warnings.append($0) })
        for _ in 0..<3 {
            let response = try await client.execute(HTTPRequest(
                url: server.baseURL + "/echo", tls: TLSOptions(insecureSkipVerify: true)))
            #expect(response.status == 200)
        }
        #expect(warnings.all.count == 1)
        #expect(warnings.all.first?.contains("insecureSkipTLSVerify") == true)
    }

    @Test("a server that requires a client certificate: refused without, accepted with files or inline PEM")
    func clientCertificate() async throws {
        let tls = try TLSFixtures()
        let server = try await LoopbackHTTPServer(tls: tls, requireClientCertificate: true)
        defer { server.stop() }
        let client = try CurlClient()
        let url = server.baseURL + "/echo"
        let error = await #expect(throws: HTTPError.self) {
            try await client.execute(HTTPRequest(url: url, tls: TLSOptions(ca: .file(tls.caCertificate)), retry: .none))
        }
        #expect(error?.code == .tlsFailed, "\(String(describing: error))")
        let fromFiles = TLSOptions(
            ca: .file(tls.caCertificate), clientCertificate: .file(tls.clientCertificate),
            clientKey: .file(tls.clientKey))
        let inline = TLSOptions(
            ca: try pem(tls.caCertificate), clientCertificate: try pem(tls.clientCertificate),
            clientKey: try pem(tls.clientKey))
        for options in [fromFiles, inline] {
            let response = try await client.execute(HTTPRequest(url: url, tls: options))
            #expect(response.status == 200)
        }
    }
}

/// Collects warnings from `CurlClient(warn:)`.
final class Warnings: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ warning: String) { lock.withLock { items.append(warning) } }
    var all: [String] { lock.withLock { items } }
}
