import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

/// A typo in the server config or the tokens file gets file:line:col and a "did you mean", as strategy files do.
struct ConfigSuggestionTests {
    static let digest = String(repeating: "a", count: 64)

    @Test(arguments: [
        ("tokenFile: tokens.yaml\n", 1, 1, "unknown setting `tokenFile`; did you mean `tokensFile`?"),
        ("tokensFile: tokens.yaml\nlistne: :80\n", 2, 1, "unknown setting `listne`; did you mean `listen`?"),
        ("tokensFile: tokens.yaml\ntls: {cert: a.crt, kye: a.key}\n", 2, 20, "unknown TLS setting `kye`; did you mean `key`?"),
        ("tokensFile: tokens.yaml\nweather: sunny\n", 2, 1, "unknown setting `weather`; known: "),
    ] as [(String, Int, Int, String)])
    func aServerConfigTypoIsNamedWithTheKeyItMeant(text: String, line: Int, column: Int, says: String) throws {
        let dir = try makeTemporaryDirectory("sluice-config-typo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "tokens: []\n".write(toFile: dir + "/tokens.yaml", atomically: true, encoding: .utf8)
        let error = #expect(throws: ConfigError.self) {
            try ServerConfig.parse(text, file: "sluice.yaml", baseDirectory: dir)
        }
        #expect(error?.description == "sluice.yaml:\(line):\(column): \(says)" || error?.description.hasPrefix(
            "sluice.yaml:\(line):\(column): \(says)") == true, "\(String(describing: error))")
    }

    @Test(arguments: [
        ("tokenz:\n  - {name: a, role: ci, sha256: \(digest)}\n", 1, 1, "unknown key `tokenz`; did you mean `tokens`?"),
        ("tokens:\n  - {name: a, rol: ci, sha256: \(digest)}\n", 2, 15, "tokens[0]: unknown key `rol`; did you mean `role`?"),
        ("tokens:\n  - {name: a, role: ci, sha265: \(digest)}\n", 2, 25, "tokens[0]: unknown key `sha265`; did you mean `sha256`?"),
        ("tokens: []\nextra: 1\n", 2, 1, "unknown key `extra`; known: tokens"),
    ] as [(String, Int, Int, String)])
    func aTokensFileTypoIsNamedWithTheKeyItMeant(text: String, line: Int, column: Int, says: String) {
        let error = #expect(throws: ConfigError.self) { try TokenFile.parse(text, file: "tokens.yaml") }
        #expect(error?.description == "tokens.yaml:\(line):\(column): \(says)", "\(String(describing: error))")
        #expect(error?.description.contains(Self.digest) == false, "no digest is quoted")
    }

    @Test
    func serveStopsWithTheTypoAndTheSuggestion() async throws {
        let dir = try makeTemporaryDirectory("sluice-serve-typo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "tokensFile: tokens.yaml\nlistne: 127.0.0.1:0\n".write(toFile: dir + "/sluice.yaml", atomically: true, encoding: .utf8)
        try "tokens: []\n".write(toFile: dir + "/tokens.yaml", atomically: true, encoding: .utf8)
        let result = try await runSluice(["serve", "--config", dir + "/sluice.yaml"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("sluice.yaml:2:1: unknown setting `listne`; did you mean `listen`?"), "\(result.stderr)")
    }
}
