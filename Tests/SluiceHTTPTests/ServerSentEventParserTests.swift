import Foundation
import SluiceHTTP
import Testing

@Suite("Server-Sent Events parser")
struct ServerSentEventParserTests {
    static let stream = """
        : following events after 0\n\n\
        id: 1\nevent: RolloutStarted\ndata: {"seq":1}\n\n\
        retry: 2500\n\
        data: first line\r\ndata:second line\rdata\n\n\
        :keepalive\n\n\
        id: 7\ndata: {"seq":7}\nunknown: ignored\n\n\
        id\ndata: after an empty id\n\n
        """

    static let expected = [
        ServerSentEvent(id: "1", type: "RolloutStarted", data: #"{"seq":1}"#),
        ServerSentEvent(id: "1", data: "first line\nsecond line\n"),
        ServerSentEvent(id: "7", data: #"{"seq":7}"#),
        ServerSentEvent(id: "", data: "after an empty id"),
    ]

    @Test("fields, multi-line data, comments, id and retry")
    func wholeStream() {
        var parser = ServerSentEventParser()
        #expect(parser.feed(Array(Self.stream.utf8)) == Self.expected)
        #expect(parser.retry == .milliseconds(2500))
        #expect(parser.lastEventID == "")
    }

    @Test(
        "the same events whatever the chunk boundaries (inside a line, inside a CRLF)",
        arguments: [1, 2, 3, 5, 7, 13, 64])
    func chunked(size: Int) {
        var parser = ServerSentEventParser()
        let bytes = Array(Self.stream.utf8)
        var events: [ServerSentEvent] = []
        for start in stride(from: 0, to: bytes.count, by: size) {
            events += parser.feed(bytes[start..<min(start + size, bytes.count)])
        }
        #expect(events == Self.expected)
    }

    @Test("a CR at the end of one chunk and the LF at the start of the next are one line ending")
    func splitCRLF() {
        var parser = ServerSentEventParser()
        #expect(parser.feed(Array("data: a\r".utf8)).isEmpty)
        #expect(parser.feed(Array("\ndata: b\r".utf8)).isEmpty)
        #expect(parser.feed(Array("\n\r\n".utf8)) == [ServerSentEvent(id: nil, data: "a\nb")])
    }

    @Test("an event is dispatched only at its blank line; a half event is held")
    func incomplete() {
        var parser = ServerSentEventParser()
        #expect(parser.feed(Array("id: 3\ndata: {\"seq\":3}\n".utf8)).isEmpty)
        #expect(parser.feed(Array("\n".utf8)) == [ServerSentEvent(id: "3", data: "{\"seq\":3}")])
    }

    @Test("a bad retry is ignored, a leading BOM is skipped, no data means no event")
    func edgeCases() {
        var parser = ServerSentEventParser()
        let events = parser.feed(Array("\u{FEFF}retry: 1s\nevent: x\n\nretry: 10\ndata: y\n\n".utf8))
        #expect(events == [ServerSentEvent(id: nil, data: "y")], "event: x with no data is not dispatched")
        #expect(parser.retry == .milliseconds(10))
    }
}
