import Foundation
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

@testable import SluiceStore

/// Dashboard sessions in the store (Store+Sessions.swift): what one replica keeps, another reads, and a
/// sign-out on one ends everywhere; expired ones are pruned.
@Suite struct StoreSessionTests {
    static func session(_ digest: String, expires: Timestamp, tokenDigest: String? = "t") -> StoredSession {
        StoredSession(
            digest: digest, name: "olivia", role: "oncall", tokenDigest: tokenDigest, csrf: "csrf-" + digest,
            expires: expires)
    }

    @Test(arguments: StoreBackend.all)
    func aSessionIsKeptReadByAnotherOpeningEndedAndPrunedWhenExpired(_ backend: StoreBackend) async throws {
        let (store, reopen) = try await backend.durable()
        let epoch = Fixtures.epoch
        let early = Self.session("a", expires: epoch + .seconds(60))
        let late = Self.session("b", expires: epoch + .seconds(3600), tokenDigest: nil)
        try await store.putSession(early)
        try await store.putSession(late)
        #expect(try await store.session(digest: "a") == early)
        #expect(try await store.session(digest: "unknown") == nil)
        // Another opening of the same store (another replica, or after a restart) knows both.
        let other = try await reopen()
        #expect(try await other.session(digest: "b") == late, "an OIDC session keeps its nil token digest")
        #expect(try await other.pruneSessions(expiredBy: epoch + .seconds(60)) == 1)
        #expect(try await store.session(digest: "a") == nil)
        try await other.deleteSession(digest: "b")
        #expect(try await store.session(digest: "b") == nil)
        #expect(try await store.pruneSessions(expiredBy: epoch + .seconds(7200)) == 0)
    }
}
