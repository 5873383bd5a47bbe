import Foundation
import Testing

@testable import SluiceCore

/// Each tick keeps what the router read back beside the weight Sluice wants, so that nothing reports a weight
/// the router has not confirmed.
@Suite struct DecideReadBackTests {
    let strategy = Fixture.strategy()

    /// A rollout holding stage 1 (5 %), confirmed by the router at 30 s.
    func holding() -> Rollout {
        let started = Rollout.start(
            id: "r-1", strategy: strategy, revision: 1, version: "v2", actor: "ci", pools: nil, now: Fixture.t0)
        let entered = decide(
            started.rollout, strategy: strategy, input: Fixture.observed(router: 0, at: Fixture.at(10)),
            now: Fixture.at(10))
        return decide(
            entered.rollout, strategy: strategy, input: Fixture.observed(router: 5, at: Fixture.at(30)),
            now: Fixture.at(30)
        ).rollout
    }

    @Test func aTickKeepsTheReadBackWeightAndItsTime() {
        let rollout = holding()
        #expect(rollout.router == RouterReadBack(weight: 5, readAt: Fixture.at(30)))
        #expect(rollout.weightConfirmed)
    }

    @Test func aRollbackIsUnconfirmedUntilTheRouterReadsBackZeroAndSaysWhyItFails() {
        let rollback = decide(
            holding(), strategy: strategy, input: .command(.rollback(actor: "oncall", reason: "INC-42")),
            now: Fixture.at(40))
        // The command wants 0 %; the router was last read at 5 %: not confirmed, and not claimed.
        #expect(rollback.rollout.desiredWeight == 0 && rollback.rollout.router?.weight == 5)
        #expect(!rollback.rollout.weightConfirmed)
        let failure = EffectFailure(effect: .setWeight(0), message: "Caddy admin API answered HTTP 500")
        let refused = decide(
            rollback.rollout, strategy: strategy,
            input: Fixture.observed(router: 5, at: Fixture.at(41), failed: [failure]), now: Fixture.at(41))
        #expect(refused.rollout.phase == .rollingBack)
        #expect(
            refused.rollout.router
                == RouterReadBack(
                    weight: 5, readAt: Fixture.at(41), unconfirmedSince: Fixture.at(41),
                    failure: "setWeight(0) failed: Caddy admin API answered HTTP 500"))
        // The router stops answering: the last weight read and its time stay, unconfirmed since the first miss.
        let down = decide(
            refused.rollout, strategy: strategy, input: Fixture.observed(router: nil, at: Fixture.at(51), failed: [failure]),
            now: Fixture.at(51))
        #expect(down.rollout.router?.weight == 5 && down.rollout.router?.readAt == Fixture.at(41))
        #expect(down.rollout.router?.unconfirmedSince == Fixture.at(41))
        let confirmed = decide(
            down.rollout, strategy: strategy, input: Fixture.observed(router: 0, at: Fixture.at(61)), now: Fixture.at(61))
        #expect(confirmed.rollout.phase == .rolledBack)
        #expect(confirmed.rollout.router == RouterReadBack(weight: 0, readAt: Fixture.at(61)))
        #expect(confirmed.rollout.weightConfirmed)
    }

    @Test func aRolloutStoredWithoutReadBackStillDecodes() throws {
        let rollout = holding()
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(rollout)) as! [String: Any]
        object["router"] = nil
        let old = try JSONDecoder().decode(Rollout.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(old.router == nil && !old.weightConfirmed)
        #expect(old.id == rollout.id && old.desiredWeight == 5)
    }
}
