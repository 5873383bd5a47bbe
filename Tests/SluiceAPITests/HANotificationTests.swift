import Foundation
import SluiceHTTP
import SluiceTestSupport
import Testing

/// Webhooks with two replicas on PostgreSQL (docs/ha.md "Notifications"): every replica that started after a
/// strategy named a webhook follows its events (a rolling update restarts them all), but only the one that drives
/// the strategy sends them, so a receiver gets each event once, not once a replica.
@Suite struct HANotificationTests {
    @Test func eachEventReachesTheWebhookOnceNotOnceAReplica() async throws {
        let receiver = try await LoopbackHTTPServer()
        defer { receiver.stop() }
        let world = try await HAForwardTests.world(webhook: receiver.baseURL + "/status/200?key=hook")
        defer { world.stop() }
        // As in a rolling update: the replica that does not drive web/search starts again and finds its webhook.
        try await world.other.restart(signal: SIGTERM)
        let started = try await runSluice(
            ["rollout", "start", "web/search", "--version", "v2"] + world.owner.tokenArgs(.ci))
        #expect(started.status == 0, "\(started.stderr)\n\(world.logs)")
        try await waitUntil("v2 at 10% at Caddy", timeout: .seconds(30)) { try await world.weights() == "[9, 1]" }
        let rolledBack = try await runSluice(
            ["rollback", "web/search", "--reason", "the webhook test"] + world.owner.tokenArgs(.oncall))
        #expect(rolledBack.status == 0, "\(rolledBack.stderr)\n\(world.logs)")
        let events = try await world.events(from: world.owner)
        #expect(events.last?.type == "RolledBack", "\(events.map(\.type))")

        let http = try CurlClient()
        func delivered(by server: ServeProcess) async throws -> Int {
            let text = String(decoding: try await http.execute(HTTPRequest(url: server.url + "/metrics")).body, as: UTF8.self)
            let line = text.split(separator: "\n").first { $0.hasPrefix(#"sluice_webhook_deliveries_total{outcome="delivered"}"#) }
            return Int(Double(line?.split(separator: " ").last ?? "") ?? -1)
        }
        try await waitUntil("the owner to deliver all \(events.count) events", timeout: .seconds(30)) {
            try await delivered(by: world.owner) == events.count
        }
        let received = String(decoding: try await http.execute(HTTPRequest(url: receiver.baseURL + "/count?key=hook")).body, as: UTF8.self)
        #expect(received == String(events.count), "the receiver got \(received) posts for \(events.count) events")
        #expect(try await delivered(by: world.other) == 0, "the replica that does not drive web/search sent none")
    }
}
