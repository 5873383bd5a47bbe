import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child process a test starts (Prometheus, Caddy, moto, `sluice serve`...), stopped by its PID.
/// Its output goes to a log file under `directory`, shown when something fails.
public final class ManagedProcess: @unchecked Sendable {
    public let name: String
    public let process: Process
    public let logPath: String

    /// Starts `executable` with `arguments`. Fails with a message naming how to install it when it
    /// is missing, so a test never passes silently without the part it needs.
    public init(
        name: String, executable: String, arguments: [String], environment: [String: String]? = nil,
        directory: String, installHint: String
    ) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw SupportError("\(name): \(executable) not found; install it with: \(installHint)")
        }
        self.name = name
        self.logPath = directory + "/\(name).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try runWithStopSignalsUnblocked(process)
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    /// Whether the process has exited on its own terms: status 0, not killed by a signal.
    public var exitedCleanly: Bool {
        !process.isRunning && process.terminationReason == .exit && process.terminationStatus == 0
    }

    /// The last `bytes` of the process's output, for failure messages.
    public func logTail(_ bytes: Int = 4000) -> String {
        guard let data = FileManager.default.contents(atPath: logPath) else { return "" }
        return String(decoding: data.suffix(bytes), as: UTF8.self)
    }

    /// Sends `signal` and waits (bounded) for the process to exit; SIGKILL if it does not.
    public func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(5)) {
        guard process.isRunning else { return }
        kill(pid, signal)
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }  // poll until exit
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop(signal: SIGKILL) }
}

/// Starts `process` so that SIGTERM and SIGINT reach it. A child inherits the signal mask of the thread that
/// spawns it, and the threads a Swift test runs on have every signal blocked: a server that does not unblock
/// SIGTERM itself (Caddy, Prometheus, moto...) would ignore `stop()` and hold a thread for the whole grace period
/// until SIGKILL. Only the spawning thread's mask changes, and only for the spawn.
public func runWithStopSignalsUnblocked(_ process: Process) throws {
    var stopSignals = sigset_t()
    sigemptyset(&stopSignals)
    sigaddset(&stopSignals, SIGTERM)
    sigaddset(&stopSignals, SIGINT)
    var previous = sigset_t()
    pthread_sigmask(SIG_UNBLOCK, &stopSignals, &previous)
    defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
    try process.run()
}

/// A failure of test support: a missing binary, a server that did not come up in time.
public struct SupportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SupportError("socket() failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard bound else { throw SupportError("bind() failed") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Polls `condition` every `interval` until it is true or `timeout` passes; never sleeps blindly.
public func waitUntil(
    _ what: String, timeout: Duration = .seconds(30), interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if (try? await condition()) == true { return }
        if ContinuousClock.now >= deadline { throw SupportError("timed out after \(timeout) waiting for \(what)") }
        try await Task.sleep(for: interval)  // poll interval of a deadline-bounded wait
    }
}

/// A fresh temporary directory for one test.
public func makeTemporaryDirectory(_ prefix: String = "sluice-test") throws -> String {
    let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The repository root (the folder holding Package.swift), found from this file's location.
public func repositoryRoot(file: String = #filePath) -> String {
    var url = URL(fileURLWithPath: file).deletingLastPathComponent()
    while url.path != "/" {
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        url.deleteLastPathComponent()
    }
    return FileManager.default.currentDirectoryPath
}

/// `.tools/venv/bin/NAME` in the repository (Caddy, moto), installed by `scripts/setup`.
public func toolPath(_ name: String) -> String { repositoryRoot() + "/.tools/venv/bin/" + name }

/// The built `sluice` binary: `$SLUICE_BIN` (scripts/test sets it), else `.build/debug/sluice`.
public func sluiceBinary() throws -> String {
    let path = ProcessInfo.processInfo.environment["SLUICE_BIN"] ?? repositoryRoot() + "/.build/debug/sluice"
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw SupportError("sluice binary not found at \(path); build it with `swift build` (scripts/test does)")
    }
    return path
}
