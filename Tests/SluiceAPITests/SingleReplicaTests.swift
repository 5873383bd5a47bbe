import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The single-replica guard with the real binary: a second `sluice serve` on a state file in use refuses to
/// start and says why; a SIGKILLed holder leaves no stale lock.
@Suite struct SingleReplicaTests {
    @Test func aSecondServeOnTheSameStateFileExitsWithTheFileAndItsHolderAndOneStartsAfterAKill() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let second = server.directory + "/second.yaml"
        try "listen: 127.0.0.1:\(try freePort())\ntokensFile: tokens.yaml\nstatePath: state.db\n"
            .write(toFile: second, atomically: true, encoding: .utf8)

        let refused = try await runSluice(["serve", "--config", second], in: server.directory)
        #expect(refused.status == 1)
        #expect(
            refused.stderr.contains("the store \(server.directory)/state.db is in use by another sluice serve"),
            "\(refused.stderr)")
        #expect(refused.stderr.contains("pid \(server.process.pid) on "), "names the holder: \(refused.stderr)")
        // The first one serves on, untouched.
        #expect(server.process.isRunning)
        #expect(try await runSluice(["status"] + server.tokenArgs(.viewer)).status == 0)

        // SIGKILL ends the holder without any cleanup; the kernel releases the lock, and a new server starts.
        try await server.restart(signal: SIGKILL)
        #expect(try await runSluice(["status"] + server.tokenArgs(.viewer)).status == 0)
    }
}
