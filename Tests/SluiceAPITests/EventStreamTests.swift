import Foundation
import SluiceAPI
import SluiceCore
import SluiceTestSupport
import Testing

/// Events as Server-Sent Events and as long polls: backlog, live, and resume without a gap.
struct EventStreamTests {
    let viewer = TestTokens.token(.viewer)

    @Test
    func streamSendsBacklogThenLiveEvents() async throws {
        try await withAPIServer { url, backend, _ in
            for n in 1...3 { backend.append(rollout: "r-a", type: .stageStarted, message: "stage \(n)") }
            let reader = try SSEReader(port: url.port!, path: "/v1/events?after=1", token: viewer)
            let backlog = await reader.read(2)
            #expect(backlog.map(\.id) == ["2", "3"])
            #expect(backlog.first?.event == "StageStarted")
            #expect(reader.head?.contains("text/event-stream") == true)
            backend.append(rollout: "r-a", type: .trafficShifted, message: "live")
            let live = await reader.read(1)
            #expect(live.map(\.id) == ["4"])
            let decoded = try JSONDecoder().decode(EventView.self, from: Data(live[0].data.utf8))
            #expect(decoded.type == "TrafficShifted" && decoded.message == "live" && decoded.seq == 4)
        }
    }

    @Test
    func reconnectingWithLastEventIDMissesNothing() async throws {
        try await withAPIServer { url, backend, _ in
            backend.append(rollout: "r-a", type: .rolloutStarted, message: "1")
            var reader: SSEReader? = try SSEReader(port: url.port!, path: "/v1/events", token: viewer)
            let first = await reader!.read(1)
            #expect(first.map(\.id) == ["1"])
            reader = nil  // the client goes away...
            for n in 2...5 { backend.append(rollout: "r-a", type: .stageStarted, message: "\(n)") }  // ...while these commit
            let resumed = try SSEReader(port: url.port!, path: "/v1/events", token: viewer, lastEventID: first.last!.id)
            #expect(await resumed.read(4).map(\.id) == ["2", "3", "4", "5"])
            let byQuery = try SSEReader(port: url.port!, path: "/v1/events?after=3", token: viewer)
            #expect(await byQuery.read(2).map(\.id) == ["4", "5"])
        }
    }

    @Test
    func streamFiltersByRollout() async throws {
        try await withAPIServer { url, backend, _ in
            backend.append(rollout: "r-a", type: .stageStarted, message: "a")
            backend.append(rollout: "r-b", type: .stageStarted, message: "b")
            let reader = try SSEReader(port: url.port!, path: "/v1/events?rollout=r-b", token: viewer)
            backend.append(rollout: "r-a", type: .stageStarted, message: "a2")
            backend.append(rollout: "r-b", type: .stageStarted, message: "b2")
            #expect(await reader.read(2).map(\.id) == ["2", "4"])
        }
    }

    @Test
    func streamNeedsAToken() async throws {
        try await withAPIServer { url, _, _ in
            let reader = try SSEReader(port: url.port!, path: "/v1/events", token: "wrong")
            _ = await reader.read(0)  // returns once the response head is in
            #expect(reader.head?.hasPrefix("HTTP/1.1 401") == true)
        }
    }

    @Test
    func longPollAnswersAsSoonAsAnEventCommits() async throws {
        try await withAPIServer { url, backend, _ in
            backend.append(rollout: "r-a", type: .rolloutStarted, message: "1")
            async let polled = send("GET", url, "/v1/events?after=1&wait=20", token: viewer)
            try await waitUntil("the poll to park") { backend.signal.waiting > 0 }
            backend.append(rollout: "r-a", type: .stageStarted, message: "2")
            let started = ContinuousClock.now
            let answer = try await polled
            #expect(ContinuousClock.now - started < .seconds(5))
            let list = try JSONDecoder().decode(EventList.self, from: answer.body)
            #expect(list.events.map(\.seq) == [2])
            #expect(list.last == 2)
            let empty = try await send("GET", url, "/v1/events?after=2", token: viewer)
            #expect(try JSONDecoder().decode(EventList.self, from: empty.body).last == 2)
        }
    }
}
