import Foundation
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing

@testable import SluiceProviders

/// Header values `fromEnv` and `fromFile`: read when the provider is built, sent to the real server, a file
/// re-read when it changes, and a missing variable or file named in the error without any value.
@Suite struct MetricsHeaderSecretsTests {
    /// The headers (lower-case names) the loopback server saw on the last `/record?key=KEY`.
    static func recorded(_ server: LoopbackHTTPServer, _ client: CurlClient, _ key: String) async throws
        -> [String: String]
    {
        let response = try await client.execute(HTTPRequest(method: "GET", url: server.baseURL + "/recorded?key=\(key)"))
        return try JSONDecoder().decode([String: String].self, from: response.body)
    }

    @Test func valuesFromTheEnvironmentAndAFileReachTheServerAndARotatedFileIsSentNext() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let file = try makeTemporaryDirectory("sluice-header-file") + "/other-key"
        try "file-secret-1\n".write(toFile: file, atomically: true, encoding: .utf8)
        let config = WebConfig(
            url: server.baseURL + "/record?key=rotate", jsonPath: "value",
            headers: ["X-Api-Key": .fromEnv("PROM_KEY"), "X-Other-Key": .fromFile(file), "X-Scope-OrgID": "shop"])
        let provider = try WebProvider(
            name: "stats", config: config, client: client, environment: ["PROM_KEY": "env-secret-1"])

        #expect(try await provider.sample(query: "q") == 1)
        var seen = try await Self.recorded(server, client, "rotate")
        #expect(seen["x-api-key"] == "env-secret-1")
        #expect(seen["x-other-key"] == "file-secret-1")
        #expect(seen["x-scope-orgid"] == "shop")

        try "file-secret-2\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try await provider.sample(query: "q") == 1)
        seen = try await Self.recorded(server, client, "rotate")
        #expect(seen["x-other-key"] == "file-secret-2")

        // A file that goes away is an error naming it, at the next query.
        try FileManager.default.removeItem(atPath: file)
        let error = await #expect(throws: ProviderError.self) { try await provider.sample(query: "q") }
        #expect(error?.description.contains("header X-Other-Key: cannot read fromFile \(file): no such file") == true)
        #expect(error?.description.contains("file-secret") == false)
    }

    @Test func theRegistryReadsTheEnvironmentItIsGiven() async throws {
        let server = try await LoopbackHTTPServer()
        defer { server.stop() }
        let client = try CurlClient()
        let registry = MetricProviderRegistry(client: client, environment: ["PROM_KEY": "env-secret-2"])
        let provider = try registry.makeProvider(
            name: "stats",
            config: .web(
                WebConfig(
                    url: server.baseURL + "/record?key=registry", jsonPath: "value",
                    headers: ["X-Api-Key": .fromEnv("PROM_KEY")])))
        #expect(try await provider.sample(query: "q") == 1)
        #expect(try await Self.recorded(server, client, "registry")["x-api-key"] == "env-secret-2")
    }

    @Test(
        "a missing or empty variable or file fails the provider's construction, named, with no value",
        arguments: [
            ([:], HeaderValue.fromEnv("PROM_KEY"), "header X-Api-Key: environment variable PROM_KEY is not set on the server"),
            (["PROM_KEY": ""], .fromEnv("PROM_KEY"), "header X-Api-Key: environment variable PROM_KEY is empty on the server"),
            (
                ["PROM_KEY": "env-secret-3"], .fromFile("/nonexistent/prom-key"),
                "header X-Api-Key: cannot read fromFile /nonexistent/prom-key: no such file"
            ),
        ] as [([String: String], HeaderValue, String)])
    func missingSource(environment: [String: String], value: HeaderValue, message: String) throws {
        let config = PrometheusConfig(address: "http://user:pw@127.0.0.1:9090", headers: ["X-Api-Key": value])
        let error = #expect(throws: ProviderError.self) {
            try PrometheusProvider(
                name: "prom", config: config, client: ScriptedHTTPClient(body: "{}"), environment: environment)
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.description == "prometheus \"prom\" at http://127.0.0.1:9090: \(message)")
    }

    @Test func anEmptyFileIsNamed() throws {
        let file = try makeTemporaryDirectory("sluice-header-file") + "/empty"
        try "\n".write(toFile: file, atomically: true, encoding: .utf8)
        let config = PrometheusConfig(address: "http://127.0.0.1:9090", headers: ["X-Api-Key": .fromFile(file)])
        let error = #expect(throws: ProviderError.self) {
            try PrometheusProvider(name: "prom", config: config, client: ScriptedHTTPClient(body: "{}"))
        }
        #expect(error?.message == "header X-Api-Key: fromFile \(file) is empty")
    }
}
