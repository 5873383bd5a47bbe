import Foundation
import SluiceAPI
import SluiceController
import SluiceCore
import SluiceTestSupport
import Testing

/// One JSON encoding of an event: the API's list, its event stream and the webhooks' body are the same bytes.
struct EventEncodingTests {
    static let event = Event(
        time: FakeBackend.epoch, rollout: "r-1", strategy: StrategyKey(namespace: "shop", name: "checkout"),
        type: .rollbackStarted, stage: 1, weight: 25, actor: "oncall-bot", reason: "5xx on canary/eu",
        message: "rolling back: \"errors\" ≥ 1%",
        data: ["check": .string("error-rate"), "value": .number(0.031), "url": .string("http://prom/api/v1")])

    @Test
    func theAPIAndTheWebhooksShareOneType() {
        #expect(EventView.self == EventPayload.self, "the API's event is the webhook payload, not a copy of it")
    }

    @Test
    func listStreamAndWebhookBodyAreTheSameBytes() async throws {
        try await withAPIServer { url, backend, _ in
            let stored = backend.append(Self.event)
            // What the Notifier POSTs to a webhook (Notifier.swift encodes `EventPayload(event).json()`).
            let webhook = String(decoding: try EventPayload(stored).json(), as: UTF8.self)
            #expect(!webhook.contains("\n") && !webhook.contains("\\/"), "one line, slashes as they are: \(webhook)")

            let list = try await send("GET", url, "/v1/events", token: TestTokens.token(.viewer))
            #expect(list.status == 200)
            #expect(list.text == "{\"events\":[\(webhook)],\"last\":\(stored.seq)}\n", "\(list.text)")

            let reader = try SSEReader(port: url.port!, path: "/v1/events", token: TestTokens.token(.viewer))
            let streamed = await reader.read(1)
            #expect(streamed.first?.data == webhook)
            #expect(streamed.first?.id == "\(stored.seq)")

            let decoded = try JSONDecoder().decode(EventPayload.self, from: Data(webhook.utf8))
            #expect(decoded == EventPayload(stored))
            #expect(decoded.strategy == "shop/checkout" && decoded.namespace == "shop")
        }
    }
}
