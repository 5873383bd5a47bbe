import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

/// What on-call and CI see when the router does not do what Sluice asks: a real Caddy behind a proxy whose admin
/// API answers HTTP 500 to writes, a real `sluice serve`, the `sluice` binary. Nothing may report a weight the
/// router has not read back.
struct RouterTruthTests {
    /// Caddy, the proxy in front of its admin API, and `sluice serve` with web/search behind the proxy.
    struct World {
        let caddy: CaddyServer
        let proxy: AdminProxy
        let server: ServeProcess

        static func start(hold: String = "1m") async throws -> World {
            let caddy = try await ServeProcess.caddyWithPassingCheck()
            let proxy = try await AdminProxy(upstream: caddy.adminURL)
            let server = try await ServeProcess.start()
            let path = server.directory + "/search.yaml"
            try ServeProcess.strategy(
                weight: 10, adminURL: proxy.url, stable: caddy.backendDials[0], canary: caddy.backendDials[1],
                hold: hold, metricsURL: "http://\(caddy.backendDials[2])/budget"
            ).write(toFile: path, atomically: true, encoding: .utf8)
            let applied = try await runSluice(["apply", "-f", path] + server.tokenArgs(.release))
            guard applied.status == 0 else { throw SupportError("apply failed: \(applied.stderr)") }
            return World(caddy: caddy, proxy: proxy, server: server)
        }

        func stop() {
            server.stop()
            proxy.stop()
            caddy.stop()
        }

        func status() async throws -> RolloutView? {
            let json = try await runSluice(["status", "web/search", "-o", "json"] + server.tokenArgs(.viewer))
            return try JSONDecoder().decode(RolloutList.self, from: Data(json.stdout.utf8)).rollouts.first
        }

        /// Caddy's own weights for the handler, e.g. `[9,1]`.
        func caddyWeights() async throws -> String {
            let handler = try await run("/usr/bin/curl", ["-sf", caddy.adminURL + "/id/search"]).stdout
            let object = try JSONSerialization.jsonObject(with: Data(handler.utf8)) as? [String: Any]
            let policy = (object?["load_balancing"] as? [String: Any])?["selection_policy"] as? [String: Any]
            return "\((policy?["weights"] as? [Int]) ?? [])"
        }
    }

    @Test
    func aRollbackTheRouterRefusesIsReportedAsNotConfirmedEverywhereUntilItIs() async throws {
        let world = try await World.start()
        defer { world.stop() }
        let server = world.server
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status == 0)
        try await waitUntil("the router to confirm 10%", timeout: .seconds(30)) {
            let rollout = try await world.status()
            return rollout?.router?.weight == 10 && rollout?.router?.confirmed == true
        }
        let before = try await world.caddyWeights()

        // The admin API fails writes: the rollback is requested, never reported as done.
        try world.proxy.failWrites(true)
        let oncall = server.tokenArgs(.oncall)
        let started = ContinuousClock.now
        let rollback = try await runSluice(["rollback", "web/search", "--reason", "INC-42", "--wait", "3s"] + oncall)
        let took = ContinuousClock.now - started
        #expect(rollback.status == 5, "exit 5: requested, not confirmed\n\(rollback.stdout)\n\(rollback.stderr)")
        #expect(took >= .seconds(3) && took < .seconds(5), "waited --wait, no more: \(took)")
        #expect(!rollback.stdout.contains("100% stable, 0% canary"), "\(rollback.stdout)")
        #expect(rollback.stdout.contains("NOT confirmed on stable"), "\(rollback.stdout)")
        #expect(rollback.stdout.contains("90% stable, 10% canary"), "what the router reads back: \(rollback.stdout)")
        #expect(rollback.stderr.contains("last failure: setWeight(0) failed"), "\(rollback.stderr)")
        #expect(rollback.stderr.contains("500"), "the router's answer: \(rollback.stderr)")
        #expect(rollback.stderr.contains("runbooks/manual-rollback.md"), "what to do next: \(rollback.stderr)")
        #expect(try await world.caddyWeights() == before, "Caddy still sends 10% to the canary")

        // status shows the router's weight, the wanted one beside it, and why.
        let rollout = try #require(try await world.status())
        #expect(rollout.phase == "RollingBack" && rollout.weight == 0)
        #expect(rollout.router?.weight == 10 && rollout.router?.confirmed == false, "\(String(describing: rollout.router))")
        #expect(rollout.router?.failure?.contains("setWeight(0) failed") == true)
        let table = try await runSluice(["status", "web/search"] + server.tokenArgs(.viewer)).stdout
        #expect(table.contains("10% (want 0%, router not confirming for "), "\(table)")
        #expect(table.contains("web/search: setWeight(0) failed") && table.contains("Sluice keeps retrying"), "\(table)")
        let yaml = try await runSluice(["status", "web/search", "-o", "yaml"] + server.tokenArgs(.viewer)).stdout
        #expect(yaml.contains("confirmed: false") && yaml.contains("unconfirmedSince:"), "\(yaml)")
        let metrics = try await run("/usr/bin/curl", ["-sf", server.url + "/metrics"]).stdout
        #expect(metrics.contains("sluice_canary_weight{strategy=\"web/search\"} 10.0\n"), "observed: \(metrics)")
        #expect(metrics.contains("sluice_canary_weight_wanted{strategy=\"web/search\"} 0.0\n"), "wanted: \(metrics)")

        // A new rollout over the stuck one: 409 at once with the reason; nothing recorded as superseded.
        let supersedeStarted = ContinuousClock.now
        let supersede = try await runSluice(
            ["rollout", "start", "web/search", "--version", "v3", "--supersede"] + server.tokenArgs(.ci))
        #expect(ContinuousClock.now - supersedeStarted < .seconds(3), "answered at once")
        #expect(supersede.status == 3 && supersede.stderr.contains("409"), "\(supersede.stderr)")
        #expect(supersede.stderr.contains("has not confirmed traffic on stable"), "\(supersede.stderr)")
        #expect(supersede.stderr.contains("setWeight(0) failed"), "\(supersede.stderr)")
        let events = try await runSluice(["events", "web/search"] + server.tokenArgs(.viewer)).stdout
        #expect(!events.contains("Superseded"), "\(events)")
        #expect(try await world.status()?.version == "v2", "no rollout of v3 was created")

        // Running the command again waits for the same rollback, and says again that it is not confirmed.
        let waitAgain = try await runSluice(["rollback", "web/search", "--reason", "INC-42", "--wait", "2s"] + oncall)
        #expect(waitAgain.status == 5, "\(waitAgain.stdout)\n\(waitAgain.stderr)")
        #expect(waitAgain.stdout.contains("already rolling back (INC-42)"), "\(waitAgain.stdout)")
        #expect(waitAgain.stderr.contains("setWeight(0) failed"), "\(waitAgain.stderr)")
        print("--- sluice rollback (router refusing writes)\n\(rollback.stdout)\(rollback.stderr)--- exit \(rollback.status)")
        print("--- sluice status\n\(table)--- again\n\(waitAgain.stdout)\(waitAgain.stderr)")

        // Once the router takes writes, the same command confirms.
        try world.proxy.failWrites(false)
        let again = try await runSluice(["rollback", "web/search", "--reason", "INC-42", "--wait", "20s"] + oncall)
        #expect(again.status == 0 || again.status == 3, "\(again.stdout)\n\(again.stderr)")
        if again.status == 0 {
            #expect(again.stdout.contains("traffic: 100% stable, 0% canary, confirmed by the router at "), "\(again.stdout)")
        }
        print("--- after the router recovered\n\(again.stdout)\(again.stderr)--- exit \(again.status)")
        try await waitUntil("the rollout to be RolledBack", timeout: .seconds(20)) {
            try await world.status()?.phase == "RolledBack"
        }
        let weights = try await world.caddyWeights()
        #expect(weights.hasSuffix(", 0]"), "Caddy sends nothing to the canary: \(weights)")
        let done = try await run("/usr/bin/curl", ["-sf", server.url + "/metrics"]).stdout
        #expect(done.contains("sluice_canary_weight{strategy=\"web/search\"} 0.0\n"), "\(done)")
    }

    @Test
    func waitInALogSaysWhyItIsStuckPrintsProgressAndTimesOutOnTime() async throws {
        let world = try await World.start()
        defer { world.stop() }
        let server = world.server
        try world.proxy.failWrites(true)
        let started = ContinuousClock.now
        let waited = try await runSluice(
            ["rollout", "start", "web/search", "--version", "v2", "--wait", "--timeout", "12s", "--progress-interval",
             "2s"] + server.tokenArgs(.ci), timeout: .seconds(40))
        let took = ContinuousClock.now - started
        #expect(waited.status == 4, "\(waited.stdout)\n\(waited.stderr)")
        #expect(took >= .seconds(12) && took < .seconds(13), "--timeout 12s ends within 1 s of it: \(took)")
        let lines = waited.stdout.split(separator: "\n").filter { $0.contains("web/search r-") }
        #expect(lines.count >= 5, "a line at least every 2 s, also when nothing changes: \(waited.stdout)")
        #expect(
            lines.last?.contains("stuck: setWeight(10) failed") == true,
            "why it does not move, not only (no sample yet): \(waited.stdout)")
        #expect(lines.last?.contains("weight 0% (want 10%, router not confirming") == true, "\(waited.stdout)")
        #expect(waited.stderr.contains("timed out after") && waited.stderr.contains("stuck: setWeight(10) failed"))

        // --no-wait says the rollback is requested, not done.
        let noWait = try await runSluice(
            ["rollback", "web/search", "--reason", "INC-43", "--no-wait"] + server.tokenArgs(.oncall))
        #expect(noWait.status == 0, "\(noWait.stderr)")
        #expect(noWait.stdout.contains("requested, not confirmed"), "\(noWait.stdout)")
    }
}
