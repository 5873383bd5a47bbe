import Foundation
import SluiceAPI
import SluiceCore
import Testing

/// Malformed, oversized and invalid bodies, and the errors of unknown things.
struct BodyTests {
    let release = TestTokens.token(.release)
    let admin = TestTokens.token(.admin)

    @Test(arguments: [
        ("{", "not valid JSON"),
        (#"{"strategy":"checkout"}"#, "missing `version`"),
        (#"{"strategy":7,"version":"v2"}"#, "`strategy` must be"),
        (#"{"strategy":"a/b/c","version":"v2"}"#, "NAME or NAMESPACE/NAME"),
        (#"{"strategy":"checkout","namespace":"shop","version":"  "}"#, "`version` must not be empty"),
        ("", "a JSON body is required"),
    ])
    func malformedStartBodiesAre400(body: String, says: String) async throws {
        try await withAPIServer { url, _, _ in
            let answer = try await send("POST", url, "/v1/rollouts", token: admin, body: Data(body.utf8))
            #expect(answer.status == 400)
            #expect(answer.errorCode == "bad_request")
            let message = ((try answer.json()["error"] as? [String: Any])?["message"] as? String) ?? ""
            #expect(message.contains(says), "message: \(message)")
        }
    }

    @Test
    func bodiesOverOneMebibyteAre413() async throws {
        try await withAPIServer { url, _, _ in
            let big = Data(repeating: UInt8(ascii: "#"), count: APIServer.maxBodyBytes + 1)
            let answer = try await send(
                "PUT", url, "/v1/strategies/shop/checkout", token: release, body: big,
                headers: ["Content-Type": "application/yaml"])
            #expect(answer.status == 413)
            #expect(answer.errorCode == "too_large")
            let justUnder = Data(repeating: UInt8(ascii: " "), count: APIServer.maxBodyBytes)
            let accepted = try await send(
                "PUT", url, "/v1/strategies/shop/checkout", token: release, body: justUnder,
                headers: ["Content-Type": "application/yaml"])
            #expect(accepted.status == 400, "an empty (all-blank) document is malformed, not too large")
        }
    }

    @Test
    func invalidStrategyIs422WithEveryDetail() async throws {
        try await withAPIServer { url, _, _ in
            let answer = try await send(
                "PUT", url, "/v1/strategies/shop/checkout", token: release,
                body: Data("spec:\n  stages:\n    - weight: 500\n".utf8), headers: ["Content-Type": "application/yaml"])
            #expect(answer.status == 422)
            let error = try answer.json()["error"] as? [String: Any]
            #expect(error?["code"] as? String == "invalid_strategy")
            let details = error?["details"] as? [[String: Any]] ?? []
            #expect(details.count == 1)
            #expect(details.first?["path"] as? String == "spec.stages[0].weight")
            #expect(details.first?["line"] as? Int == 3)
            #expect(details.first?["column"] as? Int == 13)
        }
    }

    @Test
    func jsonDeclaredBodyMustBeJSON() async throws {
        try await withAPIServer { url, _, _ in
            let answer = try await send(
                "PUT", url, "/v1/strategies/shop/checkout", token: release, body: Data("kind: Strategy\n".utf8),
                headers: ["Content-Type": "application/json"])
            #expect(answer.status == 400)
        }
    }

    @Test
    func applyAnswersCreatedConfiguredUnchanged() async throws {
        try await withAPIServer { url, _, _ in
            let path = "/v1/strategies/shop/cart"
            let first = try await send("PUT", url, path, token: release, body: Data("a: 1\n".utf8))
            #expect(first.status == 201)
            #expect(try first.json()["outcome"] as? String == "created")
            let same = try await send("PUT", url, path, token: release, body: Data("a: 1\n".utf8))
            #expect(try same.json()["outcome"] as? String == "unchanged")
            let dry = try await send("PUT", url, path + "?dryRun=true", token: release, body: Data("a: 2\n".utf8))
            #expect(try dry.json()["outcome"] as? String == "configured")
            #expect(try dry.json()["dryRun"] as? Bool == true)
            let stored = try await send("GET", url, path, token: release)
            #expect(try stored.json()["source"] as? String == "a: 1\n", "a dry run stores nothing")
        }
    }

    @Test
    func unknownThingsAre404AndConflictsAre409() async throws {
        try await withAPIServer { url, backend, _ in
            #expect(try await send("GET", url, "/v1/rollouts/nope", token: admin).status == 404)
            #expect(try await send("POST", url, "/v1/rollouts/nope/pause", token: admin).status == 404)
            #expect(try await send("GET", url, "/v1/strategies/shop/nope", token: admin).status == 404)
            let route = try await send("GET", url, "/v1/nothing-here", token: admin)
            #expect(route.status == 404)
            #expect(route.errorCode == "not_found")
            let start = Data(#"{"strategy":"shop/checkout","version":"v2"}"#.utf8)
            #expect(try await send("POST", url, "/v1/rollouts", token: admin, body: start).status == 201)
            let again = try await send("POST", url, "/v1/rollouts", token: admin, body: start)
            #expect(again.status == 409)
            #expect(again.errorCode == "conflict")
            backend.finish("r-1", phase: .rolledBack)
            #expect(try await send("POST", url, "/v1/rollouts/r-1/resume", token: admin).status == 409)
            let noReason = try await send(
                "POST", url, "/v1/rollouts/r-1/rollback", token: admin, body: Data(#"{"reason":" "}"#.utf8))
            #expect(noReason.status == 400)
            #expect(try await send("GET", url, "/v1/rollouts?phase=Sideways", token: admin).status == 400)
            #expect(try await send("GET", url, "/v1/events?after=-3", token: admin).status == 400)
        }
    }
}
