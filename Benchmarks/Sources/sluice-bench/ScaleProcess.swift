import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One `sluice serve` under test: its own directory (config, tokens, store, log), started as a subprocess
/// of the release binary, driven through its HTTP API with an admin token.
final class SluiceUnderTest: @unchecked Sendable {
    let directory: URL
    let port: Int
    let process = Process()
    let token = "scale-bench-" + UUID().uuidString
    let baseURL: String
    let http: HTTPClient

    /// Writes the config and tokens file and starts `binary serve`; returns once `/readyz` answers 200.
    /// `store` is the config's store lines: `statePath: sluice.db` (SQLite, the default) or `database:` and
    /// `databasePasswordFile:` (PostgreSQL).
    init(binary: String, directory: URL, http: HTTPClient, store: String = "statePath: sluice.db\n") async throws {
        self.directory = directory
        self.http = http
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try scaleFreePort()
        baseURL = "http://127.0.0.1:\(port)"
        let hash = try Self.output(of: binary, ["token", "hash"], input: token)
        try "tokens:\n  - {name: scale-bench, role: admin, sha256: \(hash)}\n"
            .write(to: directory.appendingPathComponent("tokens.yaml"), atomically: true, encoding: .utf8)
        try "listen: 127.0.0.1:\(port)\ntokensFile: tokens.yaml\n\(store)"
            .write(to: directory.appendingPathComponent("sluice.yaml"), atomically: true, encoding: .utf8)
        let log = directory.appendingPathComponent("sluice.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--config", directory.appendingPathComponent("sluice.yaml").path]
        process.currentDirectoryURL = directory
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = process.standardOutput
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if !process.isRunning { throw BenchError("sluice serve exited early; see \(log.path)") }
            if let answer = try? await request(.GET, "/readyz", authorised: false), answer.status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))  // polling /readyz until the server is up
        }
        stop()
        throw BenchError("sluice serve was not ready within 60 s; see \(log.path)")
    }

    var pid: Int32 { process.processIdentifier }

    /// The store's files (database, WAL, shared memory) together, in bytes.
    var storeBytes: Int64 {
        ["sluice.db", "sluice.db-wal", "sluice.db-shm"].reduce(0) { total, name in
            let path = directory.appendingPathComponent(name).path
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value
            return total + (size ?? 0)
        }
    }

    /// Sends one API request; the status and body of the answer.
    func request(_ method: HTTPMethod, _ path: String, body: String? = nil, contentType: String = "application/json",
                 authorised: Bool = true) async throws -> (status: Int, body: String)
    {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if authorised { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(string: body))
        }
        // A keep-alive connection the server closed as the request went out fails the request before it was sent
        // ("I/O on closed channel", seen at load 37 while starting 10,000 rollouts): send it again, at most twice.
        for attempt in 1... {
            do {
                let response = try await http.execute(request, timeout: .seconds(60))
                let bytes = try await response.body.collect(upTo: 64 << 20)
                return (Int(response.status.code), String(buffer: bytes))
            } catch let error where attempt < 3 && Self.isClosedConnection(error) {
                continue
            } catch {
                throw BenchError("\(method) \(path) to sluice serve on port \(port): \(error)")
            }
        }
        fatalError("unreachable: the loop returns or throws")
    }

    private static func isClosedConnection(_ error: any Error) -> Bool {
        if let error = error as? ChannelError, error == .ioOnClosedChannel { return true }
        if let error = error as? HTTPClientError, error == .remoteConnectionClosed { return true }
        return false
    }

    /// `/metrics` as text.
    func metrics() async throws -> String {
        let answer = try await request(.GET, "/metrics", authorised: false)
        guard answer.status == 200 else { throw BenchError("/metrics answered \(answer.status)") }
        return answer.body
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 30 s).
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    static func output(of binary: String, _ arguments: [String], input: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError("\(binary) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed).
func scaleFreePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw BenchError("bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// What /proc says about a process at one moment.
struct ProcessSample {
    /// Resident set size and its peak so far, in bytes.
    var rss: Int64
    var peakRSS: Int64
    /// User + system CPU time so far, in seconds.
    var cpuSeconds: Double
    var threads: Int
    var time: Date

    static func read(pid: Int32) throws -> ProcessSample {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func kilobytes(_ key: String) -> Int64 {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return 0 }
            return Int64(line.split(separator: " ").dropFirst().first.map(String.init) ?? "0").map { $0 * 1024 } ?? 0
        }
        let threadLine = status.split(separator: "\n").first { $0.hasPrefix("Threads:") }
        let threads = threadLine.flatMap { Int($0.split(whereSeparator: \.isWhitespace).last ?? "") } ?? 0
        // /proc/PID/stat: the fields after the command name's closing parenthesis; utime and stime are 14 and 15.
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        guard let close = stat.lastIndex(of: ")") else { throw BenchError("unreadable /proc/\(pid)/stat") }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let cpu = ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / ticks
        return ProcessSample(rss: kilobytes("VmRSS"), peakRSS: kilobytes("VmHWM"), cpuSeconds: cpu, threads: threads,
                             time: Date())
    }
}

/// The 1-minute load average of the machine.
func oneMinuteLoadAverage() -> Double {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
    return Double(text.split(separator: " ").first ?? "") ?? 0
}

/// The cumulative buckets of a histogram in Prometheus text (`name_bucket{le="..."} count`), by upper bound.
func histogramBuckets(_ name: String, in text: String) -> [(bound: Double, count: Double)] {
    var buckets: [(Double, Double)] = []
    for line in text.split(separator: "\n") where line.hasPrefix(name + "_bucket{le=\"") {
        let rest = line.dropFirst(name.count + 12)
        guard let quote = rest.firstIndex(of: "\""), let space = rest.lastIndex(of: " ") else { continue }
        let bound = rest[..<quote] == "+Inf" ? Double.infinity : Double(rest[..<quote]) ?? .nan
        buckets.append((bound, Double(rest[rest.index(after: space)...]) ?? 0))
    }
    return buckets.sorted { $0.0 < $1.0 }
}

/// A quantile of the observations between two scrapes of a cumulative histogram, interpolated linearly within
/// its bucket as Prometheus' `histogram_quantile` does (so its resolution is the bucket layout's).
func histogramQuantile(_ quantile: Double, before: [(bound: Double, count: Double)],
                       after: [(bound: Double, count: Double)]) -> Double?
{
    let earlier = Dictionary(before.map { ($0.bound, $0.count) }, uniquingKeysWith: { a, _ in a })
    let delta = after.map { (bound: $0.bound, count: $0.count - (earlier[$0.bound] ?? 0)) }
    guard let total = delta.last?.count, total > 0 else { return nil }
    let rank = quantile * total
    var lowerBound = 0.0
    var lowerCount = 0.0
    for bucket in delta {
        if bucket.count >= rank {
            if bucket.bound.isInfinite { return lowerBound }
            let share = bucket.count > lowerCount ? (rank - lowerCount) / (bucket.count - lowerCount) : 1
            return lowerBound + (bucket.bound - lowerBound) * share
        }
        lowerBound = bucket.bound
        lowerCount = bucket.count
    }
    return nil
}

/// The sum of every sample of a counter family in Prometheus text (`name{...} value` lines).
func counterSum(_ name: String, in text: String) -> Double {
    text.split(separator: "\n").filter { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }
        .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
}

/// `120s`, `30m`, `2h` or a number of seconds.
func parseBenchDuration(_ text: String) throws -> Double {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
    if let unit = text.last, let factor = units[unit], let value = Double(text.dropLast()) { return value * factor }
    if let value = Double(text) { return value }
    throw BenchError("'\(text)' is not a duration (e.g. 90s, 30m, 1h)")
}

/// The `quantile` of `values` (nearest rank), or nil when there are none.
func nearestRank(_ values: [Double], _ quantile: Double) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * quantile))]
}

/// Raises this process' open-file limit to its hard limit: the loopback servers hold one socket per connection
/// of the server under test, and /proc is read while they do.
func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
