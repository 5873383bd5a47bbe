import Foundation
import SluiceAPI
import SluiceCore
import Testing

/// Requests the API refuses before any handler runs: wrong methods (405 with `Allow`) and control
/// characters in the path or query (400); and tokens files that say where they are wrong.
struct RequestValidationTests {
    @Test(arguments: [
        ("DELETE", "/v1/rollouts", "GET, POST"),
        ("PUT", "/healthz", "GET"),
        ("POST", "/metrics", "GET"),
        ("POST", "/v1/strategies/shop/checkout", "DELETE, GET, PUT"),
        ("GET", "/v1/rollouts/r-1/rollback", "POST"),
        ("PATCH", "/v1/events", "GET"),
        ("PUT", "/v1/rollouts/r-1", "GET"),
    ])
    func aWrongMethodIs405WithAllow(method: String, path: String, allow: String) async throws {
        try await withAPIServer { url, _, _ in
            let answer = try await send(
                method, url, path, token: TestTokens.token(.admin), body: method == "GET" ? nil : Data("{}".utf8))
            #expect(answer.status == 405, "\(method) \(path): \(answer.status) \(answer.text)")
            #expect(answer.headers["allow"] == allow)
            #expect(answer.errorCode == "method_not_allowed")
            #expect(answer.text.contains("allowed: \(allow)"), "\(answer.text)")
            // Without a token too: which methods a path has is no secret, and nothing ran.
            #expect(try await send(method, url, path).status == 405)
        }
    }

    @Test
    func unknownPathsAreStill404() async throws {
        try await withAPIServer { url, _, _ in
            let answer = try await send("GET", url, "/v1/nothing", token: TestTokens.token(.admin))
            #expect(answer.status == 404 && answer.errorCode == "not_found")
            #expect(answer.headers["allow"] == nil)
        }
    }

    @Test(arguments: [
        ("/v1/events?rollout=r-1%00junk", "query parameter `rollout` holds the control character U+0000 at offset 3"),
        ("/v1/events?strategy=shop/checkout%0A", "query parameter `strategy` holds the control character U+000A"),
        ("/v1/rollouts?strategy=shop%01/checkout&limit=5", "query parameter `strategy` holds the control character U+0001"),
        ("/v1/rollouts?after=r-1%7F", "query parameter `after` holds the control character U+007F"),
        ("/v1/rollouts?phase%00=Progressing", "a query parameter's name holds the control character U+0000"),
        ("/v1/rollouts/r-1%00junk", "path segment 3 holds the control character U+0000 at offset 3"),
        ("/v1/rollouts/r-1%C2%85", "path segment 3 holds the control character U+0085"),
        ("/v1/strategies/shop/check%09out", "path segment 4 holds the control character U+0009"),
    ])
    func aControlCharacterInThePathOrQueryIs400(path: String, says: String) async throws {
        try await withAPIServer { url, backend, _ in
            _ = try await backend.startRollout(
                StrategyKey(namespace: "shop", name: "checkout"), version: "v1", actor: "seed", supersede: false)
            let answer = try await send("GET", url, path, token: TestTokens.token(.viewer))
            #expect(answer.status == 400, "\(path): \(answer.status) \(answer.text)")
            #expect(answer.errorCode == "bad_request")
            #expect(answer.text.contains(says), "\(answer.text)")
        }
    }

    @Test(arguments: [
        "/v1/events?rollout=r-%C3%A9t%C3%A9", "/v1/rollouts?strategy=shop/checkout&limit=5", "/v1/events?after=0",
        "/v1/rollouts/r-%20x",
    ])
    func printableValuesPassThrough(path: String) async throws {
        try await withAPIServer { url, _, _ in
            let answer = try await send("GET", url, path, token: TestTokens.token(.viewer))
            #expect(answer.status != 400, "\(path): \(answer.text)")
        }
    }

    @Test(arguments: [
        ("tokens: [oops\n", 2, 1, "not valid YAML"),
        ("tokens:\n  - {name: a, role: root, sha256: \(String(repeating: "a", count: 64))}\n", 2, 21, "tokens[0].role must be one of viewer, ci, oncall, release, admin"),
        ("tokens:\n  - {name: a, role: ci, sha256: abc}\n", 2, 33, "tokens[0].sha256 must be 64 hex digits"),
        ("tokens:\n  - {name: a, role: ci, sha256: \(String(repeating: "a", count: 64))}\n  - {name: a, role: ci}\n", 3, 12, "tokens[1].name \"a\" is listed twice"),
        ("tokens:\n  - {name: b, sha256: \(String(repeating: "a", count: 64))}\n", 2, 5, "tokens[0].role is required"),
        ("tokens: {a: 1}\n", 1, 9, "`tokens` must be a list"),
        ("users: []\n", 1, 1, "not a tokens file"),
    ] as [(String, Int, Int, String)])
    func aBadTokensFileSaysFileLineAndColumn(text: String, line: Int, column: Int, says: String) {
        let error = #expect(throws: ConfigError.self) { try TokenFile.parse(text, file: "tokens.yaml") }
        #expect(error?.description.hasPrefix("tokens.yaml:\(line):\(column): ") == true, "\(String(describing: error))")
        #expect(error?.message.contains(says) == true, "\(String(describing: error))")
        #expect(error?.message.contains(String(repeating: "a", count: 64)) == false, "no digest is quoted")
    }
}
