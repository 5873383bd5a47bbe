import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What one run of the `sluice` binary printed and how it exited.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs the built `sluice` binary with `arguments` in `directory` (bounded: killed after `timeout`).
public func runSluice(_ arguments: [String], in directory: String? = nil, timeout: Duration = .seconds(30)) async throws
    -> CommandResult
{
    try await run(sluiceBinary(), arguments, in: directory, timeout: timeout)
}

/// Runs `executable` to completion (killed after `timeout`); fails with `installHint` when it is missing.
public func run(
    _ executable: String, _ arguments: [String], in directory: String? = nil, timeout: Duration = .seconds(30),
    installHint: String = "swift build"
) async throws -> CommandResult {
    guard FileManager.default.isExecutableFile(atPath: executable) else {
        throw SupportError("\(executable) not found; install it with: \(installHint)")
    }
    let scratch = try makeTemporaryDirectory("sluice-cli")
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let outPath = scratch + "/stdout", errPath = scratch + "/stderr"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    defer {
        try? out.close()
        try? err.close()
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory ?? repositoryRoot())
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    do {
        try await waitUntil("\(executable) \(arguments.joined(separator: " ")) to exit", timeout: timeout) { !process.isRunning }
    } catch {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        throw error
    }
    process.waitUntilExit()
    let stdout = String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self)
    let stderr = String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self)
    return CommandResult(status: process.terminationStatus, stdout: stdout, stderr: stderr)
}
