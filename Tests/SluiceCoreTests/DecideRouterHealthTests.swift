import Foundation
import Testing

@testable import SluiceCore

/// The router's own view of the canary as evidence in `decide` (#23.8, docs/judge.md "The router's view"): a
/// router that confirms the canary's share of traffic and takes every canary member for down on two looks in a
/// row fails the canary (traffic back to stable, rollout Failed), whatever the metrics say; one look does not.
@Suite struct DecideRouterHealthTests {
    static let down = RouterCanaryHealth(
        down: true,
        summary: "Caddy's passive health checks count failed requests 3 on 127.0.0.1:9002 (max_fails 3 within 30s): "
            + "every canary upstream is down")
    static let up = RouterCanaryHealth(
        down: false,
        summary: "Caddy's passive health checks count failed requests 0 on 127.0.0.1:9002 (max_fails 3 within 30s): "
            + "0 of 1 canary upstreams down")

    /// Two stages of 60 s, a threshold check only (no comparison to notice silence).
    static func driver() -> Driver {
        var driver = Driver(
            strategy: Fixture.strategy(stages: [
                Stage(name: "canary", weight: 10, hold: .seconds(60)),
                Stage(name: "full", weight: 100, hold: .seconds(60)),
            ]))
        driver.confirmFirstStage()
        return driver
    }

    @Test(arguments: [
        // (the router's view on each look after the weight is confirmed, the look (1-based) that fails the canary)
        ([Self.down, Self.down], 2 as Int?),
        ([Self.down, Self.up, Self.down, Self.up], nil),
        ([Self.down, nil, Self.down, nil], nil),
        ([Self.up, Self.up, Self.down, Self.down], 4),
        ([Self.up, Self.up, Self.up], nil),
    ] as [([RouterCanaryHealth?], Int?)])
    func theRouterTakingTheCanaryForDownOnTwoLooksInARowFailsIt(looks: [RouterCanaryHealth?], failsAt: Int?) {
        var driver = Self.driver()
        var failedAt: Int?
        for (index, health) in looks.enumerated() where failedAt == nil {
            driver.world.routerHealth = health
            let d = driver.tick(["error-rate": 0])
            if d.rollout.phase == .rollingBack {
                failedAt = index + 1
                let started = d.events.first { $0.type == .rollbackStarted }
                #expect(
                    started?.message.contains(
                        "canary failed: the router takes it for down on 2 looks in a row: Caddy's passive health checks "
                            + "count failed requests 3 on 127.0.0.1:9002") == true, "\(started?.message ?? "")")
                #expect(started?.reason == "CanaryFailed")
                guard case .canaryFailed(let reason)? = d.rollout.rollbackCause else {
                    Issue.record("cause \(String(describing: d.rollout.rollbackCause))")
                    continue
                }
                #expect(reason.hasSuffix("every canary upstream is down"))
                #expect(d.effects.first == .setWeight(0))
            } else if health?.down == true {
                #expect(d.rollout.router?.canaryDownLooks == 1)
                #expect(d.rollout.router?.canaryDown == Self.down.summary)
            } else {
                #expect(d.rollout.router?.canaryDownLooks == nil)
            }
        }
        #expect(failedAt == failsAt)
        if failsAt != nil {
            driver.world.routerHealth = nil
            for _ in 0..<5 where driver.rollout.phase != .failed { driver.tick() }
            #expect(driver.rollout.phase == .failed)
        }
    }

    /// Only a look whose read-back confirms the canary's weight counts: the router may be mid-change, or report
    /// members that take no traffic.
    @Test func aDownCanaryCountsOnlyWhileTheRouterConfirmsItsWeight() {
        var driver = Self.driver()
        driver.world.routerHealth = Self.down
        for _ in 0..<3 {
            // Read back as 0 on every look (the world takes the re-sent weight; the next read-back does not).
            driver.world.routerWeight = 0
            driver.tick(["error-rate": 0])
        }
        #expect(driver.rollout.phase != .rollingBack)
        #expect(driver.rollout.router?.canaryDownLooks == nil)
    }

    /// The count is stored with the rollout: a restart between the two looks still fails the canary on the
    /// second, and a read-back stored before the count existed decodes without it.
    @Test func theCountSurvivesARestartAndOldStateDecodes() throws {
        var driver = Self.driver()
        let old = try JSONEncoder().encode(driver.rollout)
        #expect(!String(decoding: old, as: UTF8.self).contains("canaryDownLooks"))
        #expect(try JSONDecoder().decode(Rollout.self, from: old).router?.canaryDownLooks == nil)
        driver.world.routerHealth = Self.down
        driver.tick(["error-rate": 0])
        var restarted = driver
        restarted.rollout = try JSONDecoder().decode(Rollout.self, from: try JSONEncoder().encode(driver.rollout))
        #expect(restarted.rollout.router?.canaryDownLooks == 1)
        #expect(restarted.tick(["error-rate": 0]).rollout.phase == .rollingBack)
    }
}
