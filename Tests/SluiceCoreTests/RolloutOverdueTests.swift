import SluiceCore
import Testing

/// `Rollout.overdueIntervals` (`sluice_rollout_overdue_intervals`): whole intervals past the next step's due time,
/// on a virtual clock; stages of Fixture.strategy() are held 60 s, its interval is 10 s.
struct RolloutOverdueTests {
    struct Case: Sendable, CustomStringConvertible {
        var description: String
        var phase: Phase
        var stage: Int = 0
        var stageStartedAt: Int?
        var canaryRequestedAt: Int?
        var now: Int
        var expected: Int?
    }

    static let cases: [Case] = [
        Case(description: "entering a stage, weight asked for 25 s ago", phase: .progressing, canaryRequestedAt: 0, now: 25, expected: 2),
        Case(description: "pending since creation, no request recorded", phase: .pending, now: 100, expected: 10),
        Case(description: "within the hold", phase: .progressing, stageStartedAt: 0, canaryRequestedAt: -5, now: 59, expected: 0),
        Case(description: "hold ended 9 s ago", phase: .progressing, stageStartedAt: 0, now: 69, expected: 0),
        Case(description: "hold ended 100 s ago", phase: .progressing, stageStartedAt: 0, now: 160, expected: 10),
        Case(description: "a later stage counts from its own request", phase: .progressing, stage: 1, canaryRequestedAt: 500, now: 530, expected: 3),
        Case(description: "paused: waits for a human", phase: .paused, stageStartedAt: 0, now: 1000, expected: nil),
        Case(description: "rolling back: the router alert's", phase: .rollingBack, now: 1000, expected: nil),
        Case(description: "promoting", phase: .promoting, stage: 2, stageStartedAt: 0, now: 1000, expected: nil),
        Case(description: "finished", phase: .succeeded, stage: 2, stageStartedAt: 0, now: 1000, expected: nil),
    ]

    @Test(arguments: cases)
    func overdueIntervals(_ c: Case) {
        var rollout = Rollout(
            id: "r-1", strategy: StrategyKey(namespace: "shop", name: "checkout"), strategyRevision: 1, version: "v2",
            phase: c.phase, stageIndex: c.stage, createdAt: Fixture.at(0))
        rollout.stageStartedAt = c.stageStartedAt.map(Fixture.at)
        rollout.canaryRequestedAt = c.canaryRequestedAt.map(Fixture.at)
        #expect(rollout.overdueIntervals(strategy: Fixture.strategy(), now: Fixture.at(c.now)) == c.expected)
    }
}
