import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Test support stops the servers it starts with SIGTERM; a child must receive it even though the threads
/// of a Swift test run with every signal blocked (a child inherits its spawner's mask).
@Suite struct ManagedProcessTests {
    @Test func aChildThatKeepsTheDefaultDispositionDiesOfSIGTERM() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // sleep installs no handler and unblocks nothing: it dies of SIGTERM only if it was spawned unblocked.
        let child = try ManagedProcess(
            name: "sleep", executable: "/bin/sleep", arguments: ["600"], directory: directory,
            installHint: "apt-get install coreutils")
        child.stop(signal: SIGTERM, timeout: .seconds(10))
        #expect(child.process.terminationReason == .uncaughtSignal)
        #expect(child.process.terminationStatus == SIGTERM, "killed by signal \(child.process.terminationStatus), not SIGTERM")
    }
}
