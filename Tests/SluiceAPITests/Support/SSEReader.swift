import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal Server-Sent Events client over a plain socket, so a test can read a stream as it arrives
/// (URLSession on Linux only hands over a body when it ends).
final class SSEReader: @unchecked Sendable {
    struct Message: Equatable {
        var id: String?
        var event: String?
        var data: String
    }

    private let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int, path: String, token: String, lastEventID: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw CocoaError(.fileReadUnknown) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        request += "Authorization: Bearer \(token)\r\n"
        if let lastEventID { request += "Last-Event-ID: \(lastEventID)\r\n" }
        request += "\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
    }

    deinit { close(fd) }

    /// The response head (status line and headers), once read.
    private(set) var head: String?

    /// Reads until `count` messages arrived or `timeout` passed; returns what arrived. The blocking reads
    /// run on a dispatch thread, never on the cooperative pool the server under test needs.
    func read(_ count: Int, timeout: Duration = .seconds(10)) async -> [Message] {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: self.readBlocking(count, timeout: timeout)) }
        }
    }

    private func readBlocking(_ count: Int, timeout: Duration) -> [Message] {
        let deadline = ContinuousClock.now + timeout
        var messages: [Message] = []
        while (messages.count < count || head == nil) && ContinuousClock.now < deadline {
            messages += drainMessages()
            if messages.count >= count && head != nil { break }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n == 0 { break }
            // Bytes, not a String: "\r\n" is one Character in Swift and would hide "\n" from searches.
            if n > 0 { buffer += chunk[0..<n].filter { $0 != UInt8(ascii: "\r") } }
        }
        return messages
    }

    private func drainMessages() -> [Message] {
        let newline = UInt8(ascii: "\n")
        func blankLine() -> Int? {
            guard buffer.count >= 2 else { return nil }
            return (0..<(buffer.count - 1)).first { buffer[$0] == newline && buffer[$0 + 1] == newline }
        }
        if head == nil, let end = blankLine() {
            head = String(decoding: buffer[..<end], as: UTF8.self)
            buffer.removeFirst(end + 2)
        }
        guard head != nil else { return [] }
        // The chunk-size lines of chunked transfer encoding stand alone and are ignored as non-fields.
        var messages: [Message] = []
        while let end = blankLine() {
            let block = String(decoding: buffer[..<end], as: UTF8.self)
            buffer.removeFirst(end + 2)
            var message = Message(data: "")
            var hasField = false
            for line in block.split(separator: "\n", omittingEmptySubsequences: true) {
                if line.hasPrefix("id: ") { message.id = String(line.dropFirst(4)); hasField = true }
                if line.hasPrefix("event: ") { message.event = String(line.dropFirst(7)); hasField = true }
                if line.hasPrefix("data: ") { message.data = String(line.dropFirst(6)); hasField = true }
            }
            if hasField { messages.append(message) }
        }
        return messages
    }
}
