import Foundation
import SluiceAPI
import SluiceCore
import Testing

/// `sluice status` shows how a check's verdict was reached: the rollout view carries each check's explanation
/// (a comparison's counts and e-value), and the JSON keeps it (docs/judge.md "Explainable verdicts").
@Suite struct RolloutViewExplanationTests {
    @Test func aChecksExplanationReachesTheRolloutView() throws {
        let time = Timestamp(millisecondsSinceEpoch: 1_795_000_000_000)
        let explanation = "errors 2/118 canary vs 31/10,402 stable; e-value 3.1 of 100 needed"
        var rollout = Rollout(
            id: "r-1", strategy: StrategyKey(namespace: "shop", name: "checkout"), strategyRevision: 1, version: "v2",
            phase: .progressing, desiredWeight: 10, createdAt: time)
        rollout.checks["errors-vs-stable"] = CheckState(
            lastSample: Sample(
                check: "errors-vs-stable", time: time, value: 3.1, verdict: .pass,
                counts: ComparisonCounts(canaryEvents: 2, canaryRequests: 118, baselineEvents: 31, baselineRequests: 10_402),
                explanation: explanation))
        let view = RolloutView(rollout, strategy: nil, now: time)
        #expect(view.checks.first?.explanation == explanation)
        let json = String(decoding: try JSONEncoder().encode(view), as: UTF8.self)
        #expect(json.contains("\"explanation\":\"errors 2\\/118 canary vs 31\\/10,402 stable; e-value 3.1 of 100 needed\""))
        #expect(try JSONDecoder().decode(RolloutView.self, from: Data(json.utf8)).checks.first?.explanation == explanation)
    }

    /// On-call sees which step of undoing a Deployment's promotion a bake's rollback is on (docs/api.md).
    @Test func anUndoStepReachesTheRolloutView() throws {
        let time = Timestamp(millisecondsSinceEpoch: 1_795_000_000_000)
        var rollout = Rollout(
            id: "r-1", strategy: StrategyKey(namespace: "shop", name: "checkout"), strategyRevision: 1, version: "v2",
            phase: .rollingBack, desiredWeight: 100, createdAt: time)
        #expect(RolloutView(rollout, strategy: nil, now: time).undoing == nil)
        rollout.undo = .previousTraffic
        let view = RolloutView(rollout, strategy: nil, now: time)
        #expect(view.undoing == "all traffic moving to the canary, which runs the previous pod template")
        let json = try JSONEncoder().encode(view)
        #expect(try JSONDecoder().decode(RolloutView.self, from: json).undoing == view.undoing)
    }
}
