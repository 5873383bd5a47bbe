import Foundation
import SluiceController
import SluiceCore
import SluiceTestSupport
import Testing

/// `sluice_store_errors_total`: a store that fails under a running rollout is counted on every failed retry, and
/// the rollout goes on once the store is back.
struct StoreErrorCountTests {
    /// Runs SQL on the scenario's store file from another process, as a broken disk or a bad hand edit would.
    static func sqlite(_ path: String, _ sql: String) throws {
        let executable = "/usr/bin/sqlite3"
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw SupportError("sqlite3 not found at \(executable); install it with: apt-get install -y sqlite3")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [path, sql]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw SupportError("sqlite3 \(sql) exited \(process.terminationStatus)") }
    }

    @Test
    func failedStoreReadsAreCountedAndTheRolloutResumesAfter() async throws {
        let scenario = try await Scenario()
        defer { Task { await scenario.stop() } }
        let rollout = try await scenario.start()
        try await scenario.tick()
        #expect(scenario.controller.snapshot().storeErrors == 0)

        // Without the rollouts' table the tick's record fails (counted), then every read of the rollout after it.
        let database = scenario.directory + "/sluice.db"
        try Self.sqlite(database, "ALTER TABLE rollouts RENAME TO rollouts_hidden")
        scenario.clock.advance(by: .seconds(10))
        // The backoff between retries runs on the controller's clock: each step of it lets one retry through.
        // It stops advancing once two failed: a retry let through then could find the table back, and the driver
        // would not be in the backoff this test then ends.
        try await waitUntil("two failed store calls", timeout: .seconds(20), interval: .milliseconds(5)) {
            if scenario.controller.snapshot().storeErrors >= 2 { return true }
            if scenario.clock.timers == 1 { scenario.clock.advance(by: scenario.options.storeRetryDelay) }
            return false
        }
        try Self.sqlite(database, "ALTER TABLE rollouts_hidden RENAME TO rollouts")
        try await waitUntil("the retry after the backoff", interval: .milliseconds(2)) { scenario.clock.timers == 1 }
        scenario.clock.advance(by: scenario.options.storeRetryDelay)
        try await scenario.settle()
        let before = scenario.controller.snapshot()
        try await scenario.tick(3)
        let after = scenario.controller.snapshot()
        #expect(after.storeErrors == before.storeErrors, "no new errors once the store is back")
        #expect(after.ticks >= before.ticks + 3, "the rollout is ticked again")
        #expect(try await scenario.phase(rollout.id) == .progressing)
    }
}
