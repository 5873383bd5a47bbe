import CCurl
import Foundation
import SluiceCore

/// One request on one easy handle: configures the handle from an `HTTPRequest`, collects the response in curl's
/// callbacks (on the event-loop thread) and resumes the waiting task exactly once. A streaming transfer hands the
/// head and each body chunk to its `sink` instead of collecting them.
final class CurlTransfer: @unchecked Sendable {
    let easy: UnsafeMutableRawPointer
    let url: String
    private let maxResponseBytes: Int
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>
    // Touched only by curl's callbacks on the event-loop thread while the handle is in the multi handle.
    private var body = Data()
    private var headers: [(name: String, value: String)] = []
    private var exceededLimit = false
    // Set before submission on the caller's thread; read on the loop thread after the submission lock.
    var continuation: CheckedContinuation<HTTPResponse, any Error>?
    private let cancelled = Locked(false)
    /// Set for a streaming transfer (before submission); the event loop also watches its idle deadline.
    let sink: CurlStreamSink?
    /// The admission slot the transfer holds (a stream holds none); freed when the transfer finishes.
    let slot: AdmissionGate.Slot?

    init(request: HTTPRequest, easy: UnsafeMutableRawPointer, sink: CurlStreamSink? = nil,
         slot: AdmissionGate.Slot? = nil) throws {
        self.easy = easy
        self.url = request.url
        self.maxResponseBytes = request.maxResponseBytes
        self.sink = sink
        self.slot = slot
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        do {
            try configure(request)
        } catch {
            release()
            throw error
        }
    }

    deinit { errorBuffer.deallocate() }

    var isCancelled: Bool { cancelled.withLock { $0 } }

    /// Marks the transfer cancelled; the event loop removes it (or never adds it) and resumes with `.cancelled`.
    func markCancelled() { cancelled.withLock { $0 = true } }

    // MARK: Configuration

    private func configure(_ request: HTTPRequest) throws {
        let method = request.method.uppercased()
        guard HeaderText.isMethod(method) else {
            throw invalid("method \"\(request.method)\" is not an HTTP method")
        }
        guard HeaderText.hasHTTPScheme(request.url) else { throw invalid("URL must start with http:// or https://") }
        guard request.maxResponseBytes >= 0 else { throw invalid("maxResponseBytes must not be negative") }

        let this = Unmanaged.passUnretained(self).toOpaque()
        try set(CURLOPT_URL, request.url)
        try set(CURLOPT_NOSIGNAL, 1)
        try setPointer(CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer))
        try set(CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS)
        try set(CURLOPT_TCP_NODELAY, 1)
        try set(CURLOPT_TCP_KEEPALIVE, 1)
        // A stream has no end to bound: no total timeout, no size limit; the sink's idle timeout guards it.
        try set(CURLOPT_TIMEOUT_MS, sink == nil ? request.timeout.roundedUpMilliseconds : 0)
        try set(CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeout.roundedUpMilliseconds)
        if sink == nil {
            try check(sluice_easy_setopt_offset(easy, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(request.maxResponseBytes)))
        }
        try setPointer(CURLOPT_WRITEDATA, this)
        try check(sluice_easy_setopt_write_callback(easy, CURLOPT_WRITEFUNCTION) { data, size, count, user in
            guard let user, let data else { return 0 }
            return Unmanaged<CurlTransfer>.fromOpaque(user).takeUnretainedValue().received(data, size * count)
        })
        try setPointer(CURLOPT_HEADERDATA, this)
        try check(sluice_easy_setopt_write_callback(easy, CURLOPT_HEADERFUNCTION) { data, size, count, user in
            guard let user, let data else { return 0 }
            return Unmanaged<CurlTransfer>.fromOpaque(user).takeUnretainedValue().receivedHeader(data, size * count)
        })

        try configureMethod(method, body: request.body)
        try configureHeaders(request)
        try configureTLS(request.tls)
    }

    private func configureMethod(_ method: String, body: Data?) throws {
        switch method {
        case "GET" where body == nil: try set(CURLOPT_HTTPGET, 1)
        case "HEAD": try set(CURLOPT_NOBODY, 1)
        default:
            if method != "POST" { try set(CURLOPT_CUSTOMREQUEST, method) }
            if let body {
                try check(sluice_easy_setopt_offset(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
                try body.withUnsafeBytes { bytes in
                    // COPYPOSTFIELDS copies now, so the handle never points into Swift-managed memory.
                    let empty: StaticString = ""
                    let pointer = bytes.baseAddress ?? UnsafeRawPointer(empty.utf8Start)
                    try check(sluice_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: pointer)))
                }
            } else if method == "POST" {
                try check(sluice_easy_setopt_offset(easy, CURLOPT_POSTFIELDSIZE_LARGE, 0))
                try set(CURLOPT_COPYPOSTFIELDS, "")
            }
        }
    }

    private func configureHeaders(_ request: HTTPRequest) throws {
        var lines: [String] = []
        for (name, value) in request.headers {
            guard HeaderText.isFieldName(name) else {
                throw invalid("header name \"\(name)\" is not a valid field name")
            }
            guard !HeaderText.hasLineBreak(value) else { throw invalid("header \(name) has a line break in its value") }
            // "Name;" is curl's way to send a header with an empty value.
            lines.append(value.isEmpty ? "\(name);" : "\(name): \(value)")
        }
        switch request.auth {
        case .bearer(let token):
            guard !HeaderText.hasLineBreak(token) else { throw invalid("bearer token has a line break") }
            lines.append("Authorization: Bearer \(token)")
        case .awsSigV4(let credentials, let region, let service):
            // Signed here rather than by CURLOPT_AWS_SIGV4: libcurl 7.88's signatures do not match AWS's
            // canonical form (moto with auth on rejects them). Each attempt is signed afresh.
            let signer = SigV4Signer(credentials: credentials, region: region, service: service)
            let signed = try signer.headers(
                method: request.method, url: request.url, headers: request.headers, body: request.body, date: Date())
            lines += signed.map { "\($0.name): \($0.value)" }
        case nil: break
        }
        // Without this curl waits up to a second for "100 Continue" before sending a larger body.
        lines.append("Expect:")
        for line in lines {
            guard let appended = curl_slist_append(headerList, line) else { throw invalid("out of memory for headers") }
            headerList = appended
        }
        try check(sluice_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList))
    }

    private func configureTLS(_ tls: TLSOptions) throws {
        if tls.insecureSkipVerify {
            try set(CURLOPT_SSL_VERIFYPEER, 0)
            try set(CURLOPT_SSL_VERIFYHOST, 0)
        } else {
            try set(CURLOPT_SSL_VERIFYPEER, 1)
            try set(CURLOPT_SSL_VERIFYHOST, 2)
        }
        try setSource(tls.ca, file: CURLOPT_CAINFO, blob: CURLOPT_CAINFO_BLOB)
        try setSource(tls.clientCertificate, file: CURLOPT_SSLCERT, blob: CURLOPT_SSLCERT_BLOB)
        try setSource(tls.clientKey, file: CURLOPT_SSLKEY, blob: CURLOPT_SSLKEY_BLOB)
        if tls.clientCertificate != nil {
            try set(CURLOPT_SSLCERTTYPE, "PEM")
            try set(CURLOPT_SSLKEYTYPE, "PEM")
        }
    }

    private func setSource(_ source: TLSOptions.Source?, file: CURLoption, blob: CURLoption) throws {
        switch source {
        case nil: return
        case .file(let path):
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw invalid("TLS file \(path) does not exist or is not readable")
            }
            try set(file, path)
        case .pem(let data):
            var copy = Array(data)
            try copy.withUnsafeMutableBytes { bytes in
                var value = curl_blob(data: bytes.baseAddress, len: bytes.count, flags: UInt32(CURL_BLOB_COPY))
                try check(sluice_easy_setopt_blob(easy, blob, &value))
            }
        }
    }

    private func set(_ option: CURLoption, _ value: Int) throws { try check(sluice_easy_setopt_long(easy, option, value)) }
    private func set(_ option: CURLoption, _ value: String) throws {
        try check(sluice_easy_setopt_string(easy, option, value))
    }
    private func setPointer(_ option: CURLoption, _ value: UnsafeMutableRawPointer) throws {
        try check(sluice_easy_setopt_pointer(easy, option, value))
    }

    private func check(_ code: CURLcode) throws {
        guard code != CURLE_OK else { return }
        throw invalid("libcurl rejected an option: " + String(cString: curl_easy_strerror(code)))
    }

    private func invalid(_ message: String) -> HTTPError {
        HTTPError(code: .invalidRequest, url: url, message: message)
    }

    // MARK: Callbacks (event-loop thread)

    private func received(_ data: UnsafeMutablePointer<CChar>, _ count: Int) -> Int {
        if let sink {
            // Returning less than `count` makes curl abort with CURLE_WRITE_ERROR.
            return sink.received(Data(bytes: data, count: count)) ? count : 0
        }
        if body.count + count > maxResponseBytes {
            exceededLimit = true
            return 0  // makes curl abort with CURLE_WRITE_ERROR; memory stays bounded
        }
        body.append(UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: count)
        return count
    }

    private func receivedHeader(_ data: UnsafeMutablePointer<CChar>, _ count: Int) -> Int {
        let bytes = UnsafeRawBufferPointer(start: data, count: count)
        sink?.touched()
        if let sink, Self.isBlankLine(bytes) {
            // The end of a header block: hand over the head unless it is an interim (1xx) one.
            var status = 0
            _ = sluice_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            if status >= 200 { sink.headReceived(status: status, headers: headers) }
        } else if bytes.starts(with: "HTTP/".utf8) {
            headers.removeAll()  // a new response (after 100 Continue, say) starts its own header block
        } else if let field = Self.headerField(bytes) {
            headers.append(field)
        }
        return count
    }

    /// `\r\n` or `\n`: the line that ends a header block.
    static func isBlankLine(_ line: UnsafeRawBufferPointer) -> Bool {
        line.elementsEqual("\r\n".utf8) || line.elementsEqual("\n".utf8)
    }

    /// `Name: value` of one header line, the value without the whitespace around it (spaces, tabs, CR, LF); nil
    /// for a line without a colon. Works on bytes: Foundation's trimming cost ~40 k instructions a response.
    static func headerField(_ line: UnsafeRawBufferPointer) -> (name: String, value: String)? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
        var start = colon + 1
        var end = line.endIndex
        while start < end, isSpace(line[start]) { start += 1 }
        while end > start, isSpace(line[end - 1]) { end -= 1 }
        return (String(decoding: line[..<colon], as: UTF8.self), String(decoding: line[start..<end], as: UTF8.self))
    }

    // MARK: Completion (event-loop thread)

    /// Builds the outcome of a finished transfer from curl's result code.
    func outcome(_ code: CURLcode) -> Result<HTTPResponse, HTTPError> {
        if code == CURLE_OK {
            var status = 0
            _ = sluice_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            var version = 0
            _ = sluice_easy_getinfo_long(easy, CURLINFO_HTTP_VERSION, &version)
            return .success(HTTPResponse(status: status, headers: headers, body: body,
                httpVersion: Self.httpVersion(version)))
        }
        let detail = String(cString: errorBuffer)
        let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        if sink?.fellBehind == true {
            let limit = "the reader fell more than \(CurlStreamSink.bufferedChunks) chunks behind the stream"
            return .failure(HTTPError(code: .tooLarge, url: url, message: limit, underlyingCode: Int(code.rawValue)))
        }
        if exceededLimit || code == CURLE_FILESIZE_EXCEEDED {
            let limit = "response body exceeds the limit of \(maxResponseBytes) bytes"
            return .failure(HTTPError(code: .tooLarge, url: url, message: limit, underlyingCode: Int(code.rawValue)))
        }
        return .failure(HTTPError(code: Self.errorCode(code, message: message), url: url, message: message,
            underlyingCode: Int(code.rawValue)))
    }

    /// The version `CURLINFO_HTTP_VERSION` reports; nil for 0 (no response) or a value this libcurl adds later.
    static func httpVersion(_ curlVersion: Int) -> HTTPVersion? {
        switch curlVersion {
        case CURL_HTTP_VERSION_1_0: return .http1_0
        case CURL_HTTP_VERSION_1_1: return .http1_1
        case CURL_HTTP_VERSION_2_0: return .http2
        case CURL_HTTP_VERSION_3: return .http3
        default: return nil
        }
    }

    static func errorCode(_ code: CURLcode, message: String) -> HTTPError.Code {
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: return .dnsFailed
        case CURLE_COULDNT_CONNECT: return .connectFailed
        case CURLE_OPERATION_TIMEDOUT: return .timedOut
        case CURLE_ABORTED_BY_CALLBACK: return .cancelled
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: return .invalidRequest
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_ENGINE_NOTFOUND,
            CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE,
            CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
            CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT:
            return .tlsFailed
        case CURLE_RECV_ERROR, CURLE_SEND_ERROR:
            // A server that rejects the client certificate after a TLS 1.3 handshake shows up as a read error.
            return message.contains("SSL") || message.contains("alert") ? .tlsFailed : .protocolError
        default: return .protocolError
        }
    }

    /// Delivers the outcome to whoever waits: the task awaiting the whole response, or the stream's sink.
    func complete(_ outcome: Result<HTTPResponse, HTTPError>) {
        if let sink {
            sink.finish(outcome)
            return
        }
        let continuation = self.continuation
        self.continuation = nil
        continuation?.resume(with: outcome.mapError { $0 as any Error })
    }

    /// Frees the header list and resets the handle for reuse; the caller returns it to the pool.
    func release() {
        curl_easy_reset(easy)
        if let headerList { curl_slist_free_all(headerList) }
        headerList = nil
    }
}

/// The checks `configure` makes on a request's method, URL and header lines, on the UTF-8 bytes while the text is
/// ASCII (every method, URL and header Sluice sends itself, `traceparent` on every call among them) and by
/// Character otherwise: iterating Characters costs grapheme breaking and Unicode property look-ups at every one,
/// ~33 k instructions a request with trace context on, 4 requests a tick (BENCHMARKS.md). The answers are the
/// Characters' answers (`CurlHeaderLineTests` compares both paths with them; `CurlClientTests` sends them).
enum HeaderText {
    /// An upper-cased method: not empty, ASCII letters only.
    static func isMethod(_ method: String) -> Bool {
        guard ASCIIBytes.all(method) else { return !method.isEmpty && method.allSatisfy { $0.isLetter && $0.isASCII } }
        return !method.isEmpty && method.utf8.allSatisfy { (0x41...0x5A).contains($0 & ~0x20) }
    }

    /// Whether the URL's scheme (up to its first ":") is http or https and it has a "://".
    static func hasHTTPScheme(_ url: String) -> Bool {
        let bytes = Array(url.utf8)
        guard ASCIIBytes.all(bytes) else {
            guard let scheme = url.split(separator: ":", maxSplits: 1).first?.lowercased() else { return false }
            return (scheme == "http" || scheme == "https") && url.contains("://")
        }
        // `split` omits empty pieces: the scheme is the first run of bytes that are not ":".
        guard let start = bytes.firstIndex(where: { $0 != UInt8(ascii: ":") }) else { return false }
        let scheme = bytes[start...].prefix { $0 != UInt8(ascii: ":") }
        return (ASCIIBytes.equalsLowercased(scheme, "http") || ASCIIBytes.equalsLowercased(scheme, "https"))
            && ASCIIBytes.schemeSeparatorEnd(bytes) != nil
    }

    /// Not empty, and no ":", whitespace or line break.
    static func isFieldName(_ name: String) -> Bool {
        guard !name.isEmpty else { return false }
        for byte in name.utf8 {
            if byte >= 0x80 { return !name.contains(where: { $0 == ":" || $0.isWhitespace || $0.isNewline }) }
            // ASCII whitespace and line breaks: 0x09...0x0D (HT, LF, VT, FF, CR) and the space.
            if byte == UInt8(ascii: ":") || byte == UInt8(ascii: " ") || (0x09...0x0D).contains(byte) { return false }
        }
        return true
    }

    /// Whether `text` holds a line break: LF, VT, FF, CR, or a Unicode one (NEL, LS, PS).
    static func hasLineBreak(_ text: String) -> Bool {
        for byte in text.utf8 {
            if byte >= 0x80 { return text.contains(where: \.isNewline) }
            if (0x0A...0x0D).contains(byte) { return true }
        }
        return false
    }
}
