import SluiceCore
import Testing

/// `Replay` on a virtual clock with recorded values as functions of time: the same `decide`, tick by tick.
@Suite struct ReplayTests {
    /// Fixture.strategy(): 5 % → 25 % → 100 %, each held 60 s, error-rate (max 0.01) everywhere, latency (max
    /// 0.2) at 25 %, failureLimit 1, noDataLimit 3, onNoData pause.
    static func run(
        _ strategy: Strategy = Fixture.strategy(), until seconds: Int = 600,
        value: @escaping @Sendable (_ check: String, _ second: Int) -> Double?
    ) async -> ReplayTimeline {
        let replay = Replay(
            strategy: strategy, version: "v2", from: Fixture.at(0), to: Fixture.at(seconds), step: .seconds(10))
        return await replay.run { checks, _, time in
            let second = Int((time - Fixture.t0).milliseconds / 1000)
            var samples: [String: Sample] = [:]
            for check in checks {
                let reading = value(check.name, second)
                samples[check.name] = Sample(
                    check: check.name, time: time, value: reading,
                    verdict: reading.map { check.verdict(for: $0) } ?? .noData, reason: reading == nil ? "empty" : nil)
            }
            return samples
        }
    }

    @Test func passingChecksPromoteAfterEveryHold() async {
        let timeline = await Self.run { _, _ in 0.001 }
        // Stage 1 confirmed at 10 s, six passes (20...70 s) end it at 70 s; stage 2 entered at 80 s, confirmed at
        // 90 s, ends at 150 s; stage 3 entered at 160 s, confirmed at 170 s, ends at 230 s: promotion.
        #expect(timeline.outcome == .promoted(at: Fixture.at(230)))
        #expect(timeline.rollout?.phase == .succeeded)
        #expect(timeline.events.filter { $0.type == .stageCompleted }.map(\.time) == [70, 150, 230].map(Fixture.at))
        // After Succeeded nothing is asked any more.
        #expect(timeline.lastTick == Fixture.at(250))
        #expect(timeline.ticks == 26)
    }

    @Test func aBreachRollsBackAtItsTickWithTheValueAndTheThreshold() async {
        let timeline = await Self.run { check, second in
            check == "latency" && second >= 120 ? 0.35 : 0.001
        }
        #expect(timeline.outcome == .rolledBack(at: Fixture.at(120), reason: "latency 0.35 > 0.2"))
        #expect(timeline.rollout?.phase == .rolledBack)
        #expect(timeline.events.last?.type == .rolledBack && timeline.events.last?.time == Fixture.at(130))
    }

    /// A strategy with `bake` is replayed through its bake: promoted at 230 s, baking from 250 s (promotion confirmed,
    /// weight 0 read back), Succeeded at 310 s; a breach during the bake would have rolled back, pools swapped back.
    @Test func theBakeIsReplayedAndABreachInItWouldHaveRolledBack() async {
        var strategy = Fixture.strategy(target: .upstreams(stable: ["a:1"], canary: ["b:1"]))
        strategy.bake = Bake(duration: .seconds(60))
        let passing = await Self.run(strategy) { _, _ in 0.001 }
        #expect(passing.events.first { $0.type == .bakeStarted }?.time == Fixture.at(250))
        #expect(passing.events.last?.type == .promoted && passing.events.last?.time == Fixture.at(310))
        #expect(passing.rollout?.phase == .succeeded)
        let breaking = await Self.run(strategy) { check, second in
            check == "error-rate" && second >= 280 ? 0.05 : 0.001
        }
        #expect(breaking.outcome == .rolledBack(at: Fixture.at(280), reason: "error-rate 0.05 > 0.01"))
        #expect(breaking.rollout?.phase == .rolledBack)
        #expect(breaking.rollout?.pools == Pools(stable: ["a:1"], canary: ["b:1"]))
    }

    @Test func noDataPausesAndStaysPausedWhileTheRestOfTheHistoryPasses() async {
        let timeline = await Self.run { _, second in (40...60).contains(second) ? nil : 0.001 }
        guard case .paused(let at, let stage, let reason) = timeline.outcome else {
            Issue.record("expected a pause, got \(timeline.outcome)")
            return
        }
        #expect(at == Fixture.at(60) && stage == 0)
        #expect(reason.contains("error-rate had no data 3 consecutive time(s)"))
        #expect(timeline.rollout?.phase == .paused)
    }

    /// An `upstreams` target's pools in the roles they had: the checks are rendered with them, as live.
    @Test func swappedPoolsReachTheSampler() async {
        let strategy = Fixture.strategy(target: .upstreams(stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80"], health: nil))
        let replay = Replay(
            strategy: strategy, version: "v3", from: Fixture.at(0), to: Fixture.at(30), step: .seconds(10),
            pools: Pools(stable: ["10.0.0.2:80"], canary: ["10.0.0.1:80"]))
        let seen = Locked<[String]>([])
        _ = await replay.run { checks, rollout, time in
            seen.withLock { $0.append(rollout.pools?.stable.joined() ?? "-") }
            return [:]
        }
        #expect(seen.withLock { $0 } == ["10.0.0.2:80", "10.0.0.2:80", "10.0.0.2:80"])
    }

    @Test func aHistoryTooShortIsUndecided() async {
        let timeline = await Self.run(until: 100) { _, _ in 0.001 }
        #expect(timeline.outcome == .undecided(stage: 1))
        #expect(timeline.lastTick == Fixture.at(100))
    }

    @Test(arguments: [
        ("2026-12-01T14:00:00Z", 1_796_133_600_000), ("2026-12-01T14:00:00.250Z", 1_796_133_600_250),
        ("2026-12-01T15:00:00+01:00", 1_796_133_600_000), ("1796133600", 1_796_133_600_000),
        ("1796133600.5", 1_796_133_600_500), ("now", 1_796_140_000_000), ("now-1h30m", 1_796_134_600_000),
    ] as [(String, Int64)])
    func timesAreReadAsReplayTakesThem(text: String, milliseconds: Int64) {
        let now = Timestamp(millisecondsSinceEpoch: 1_796_140_000_000)
        #expect(Timestamp(argument: text, now: now)?.millisecondsSinceEpoch == milliseconds)
    }

    @Test(arguments: ["yesterday", "", "now-", "now-1d", "2026-12-01", "-5", "1e9"])
    func otherTimesAreRefused(text: String) {
        #expect(Timestamp(argument: text, now: Timestamp(millisecondsSinceEpoch: 0)) == nil)
    }
}
