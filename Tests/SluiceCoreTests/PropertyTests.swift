import SluiceTestSupport
import Testing

@testable import SluiceCore

/// Thousands of random rollouts (random strategies, samples, commands, effect failures, drift, clock steps)
/// checked against the safety rules. The seed is printed; `SLUICE_PROPERTY_SEED=N` replays a run exactly.
@Suite struct PropertyTests {
    static let runs = 2000
    static let steps = 80

    @Test func randomRolloutsKeepEverySafetyRule() {
        let seed = PropertySeed.resolve("randomRolloutsKeepEverySafetyRule")
        var gen = Generator(rng: SplitMix64(seed: seed))
        var coverage = Coverage()
        for run in 0..<Self.runs {
            var model = SafetyModel(
                strategy: gen.strategy(), start: Fixture.t0, reportsCapacity: gen.chance(0.5))
            if let violation = model.run(steps: Self.steps, &gen, &coverage) {
                Issue.record("seed \(seed), run \(run): \(violation)")
                return
            }
        }
        let nonTerminal = Set(Phase.allCases.filter { !$0.isTerminal })
        #expect(coverage.rollbackProbedFrom == nonTerminal, "seed \(seed): rollback never probed from some phase")
        #expect(coverage.endedIn == [.succeeded, .rolledBack, .failed], "seed \(seed): some ending never reached")
        #expect(coverage.stagesCompleted > Self.runs / 2, "seed \(seed): too few stages completed to mean anything")
        #expect(coverage.promotionsUndone > 0, "seed \(seed): no rollback probed from a Deployment's bake")
        print("randomRolloutsKeepEverySafetyRule: \(coverage)")
    }

    /// The printed seed is enough to replay a failure: the same seed gives the same decisions.
    @Test func theSameSeedReplaysTheSameRun() {
        func trace(_ seed: UInt64) -> [[Decision]] {
            var gen = Generator(rng: SplitMix64(seed: seed))
            var coverage = Coverage()
            return (0..<50).map { _ in
                var model = SafetyModel(
                    strategy: gen.strategy(), start: Fixture.t0, reportsCapacity: gen.chance(0.5))
                _ = model.run(steps: PropertyTests.steps, &gen, &coverage)
                return model.trace
            }
        }
        let seed = PropertySeed.resolve("theSameSeedReplaysTheSameRun")
        let first = trace(seed)
        #expect(first.joined().count > 500)
        #expect(trace(seed) == first)
        #expect(trace(seed &+ 1) != first)
    }

    /// Without a single pass, no stage ever ends, whatever the holds, commands and no-data say.
    @Test func noDataAndBreachesNeverCompleteAStage() {
        let seed = PropertySeed.resolve("noDataAndBreachesNeverCompleteAStage")
        var gen = Generator(rng: SplitMix64(seed: seed))
        var ticks = 0
        for run in 0..<1000 {
            var strategy = gen.strategy()
            if strategy.analysis.checks.isEmpty { strategy.analysis.checks = [Generator.checkPool[0]] }
            var now = Fixture.t0
            var world = FlakyWorld(reportsCapacity: gen.chance(0.5))
            var d = Rollout.start(
                id: "r", strategy: strategy, revision: 1, version: "v2", actor: "ci", pools: nil, now: now)
            for _ in 0..<60 where !d.rollout.phase.isTerminal {
                world.run(d.effects, &gen)
                now = now + .seconds(gen.int(1...120))
                let input: DecisionInput
                if gen.chance(0.15) {
                    input = .command(gen.command())
                } else {
                    var observations = world.observe(&gen)
                    for check in strategy.checks(inStage: d.rollout.stageIndex) {
                        let noData = gen.chance(0.8)
                        observations.samples[check.name] = Sample(
                            check: check.name, time: now,
                            value: noData ? (gen.chance(0.5) ? nil : .nan) : (check.max == nil ? -1 : 1e9),
                            verdict: gen.chance(0.5) ? .pass : .noData, reason: "empty result")
                    }
                    input = .observed(observations)
                    ticks += 1
                }
                d = decide(d.rollout, strategy: strategy, input: input, now: now)
                let types = Set(d.events.map(\.type))
                if !types.isDisjoint(with: [.stageCompleted, .promoting, .promoted]) || d.rollout.phase == .succeeded {
                    Issue.record("seed \(seed), run \(run): a stage ended without a pass: \(d.events.map(\.message))")
                    return
                }
            }
        }
        #expect(ticks > 5000, "seed \(seed): only \(ticks) ticks")
    }
}

/// What a property run reached, so that a generator that stopped exploring is noticed.
struct Coverage: CustomStringConvertible {
    var rollbackProbedFrom: Set<Phase> = []
    var endedIn: Set<Phase> = []
    var stagesCompleted = 0
    var decisions = 0
    /// Rollback probes from a Deployment's bake, which undo its promotion.
    var promotionsUndone = 0
    var description: String {
        "\(decisions) decisions, \(stagesCompleted) stages completed, endings \(endedIn.map(\.rawValue).sorted()), "
            + "\(promotionsUndone) promotions undone"
    }
}

/// Drives one random rollout and checks every decision against the rules, with its own simple model of
/// what counts as evidence (independent of `decide`'s bookkeeping).
struct SafetyModel {
    let strategy: Strategy
    let allowedWeights: Set<Int>
    var now: Timestamp
    var rollout: Rollout
    var world: FlakyWorld
    var pending: [Effect]
    var lastEventTime: Timestamp
    /// Every decision of the run, in order (to show that a seed replays exactly).
    var trace: [Decision] = []

    // The evidence model, per visit of a stage.
    var visitStage = 0
    var passesInVisit: Set<String> = []
    var lastDecisive: [String: SampleVerdict] = [:]
    /// The verdict of each check's latest sample, no-data included.
    var lastVerdict: [String: SampleVerdict] = [:]
    var lastSampleTime: [String: Timestamp] = [:]
    var holdWaived = false
    /// The checks with a real pass, counted for the stage, on the tick being checked.
    var passedThisTick: Set<String> = []
    /// An upper bound of the hold `decide` may count: every interval (at most one analysis interval long) since
    /// the previous tick of the visit that ended with a real pass of every check while Progressing.
    var heldInVisit: Duration = .zero
    var lastTickInVisit: Timestamp?
    /// Checks with a no-data streak told by `CheckNoData` and not yet told ended.
    var noDataTold: Set<String> = []

    init(strategy: Strategy, start: Timestamp, reportsCapacity: Bool) {
        self.strategy = strategy
        world = FlakyWorld(reportsCapacity: reportsCapacity)
        allowedWeights = Set([0] + strategy.stages.map(\.weight))
        now = start
        let first = Rollout.start(
            id: "r", strategy: strategy, revision: 1, version: "v2", actor: "ci", pools: nil, now: start)
        rollout = first.rollout
        pending = first.effects
        lastEventTime = start
    }

    mutating func run(steps: Int, _ gen: inout Generator, _ coverage: inout Coverage) -> String? {
        for step in 0..<steps {
            world.run(pending, &gen)
            if !rollout.phase.isTerminal, gen.chance(0.2), let violation = probeRollback(&coverage) {
                return "step \(step): \(violation)"
            }
            now = now + .seconds(gen.int(0...30))
            if gen.chance(0.02) { now = now + .seconds(700) }
            if gen.chance(0.02) { now = now + .seconds(-25) }  // a clock stepping back
            let input = makeInput(&gen)
            let before = rollout
            let decision = decide(before, strategy: strategy, input: input, now: now)
            coverage.decisions += 1
            trace.append(decision)
            if let violation = check(decision, before: before, input: input, &coverage) {
                return "step \(step) (\(before.phase.rawValue), input \(input)): \(violation)"
            }
            rollout = decision.rollout
            pending = decision.effects
            if rollout.phase.isTerminal {
                coverage.endedIn.insert(rollout.phase)
                let again = decide(rollout, strategy: strategy, input: makeInput(&gen), now: now + .seconds(10))
                if again.rollout != rollout || !again.effects.isEmpty || !again.events.isEmpty {
                    return "step \(step): terminal \(rollout.phase.rawValue) changed: \(again)"
                }
                return nil
            }
        }
        return nil
    }

    private mutating func makeInput(_ gen: inout Generator) -> DecisionInput {
        if gen.chance(0.06) { return .command(gen.command()) }
        var observations = world.observe(&gen)
        let passBias = gen.chance(0.1) ? 0.3 : 0.84
        for check in strategy.checks(inStage: rollout.stageIndex) where gen.chance(0.9) {
            observations.samples[check.name] = gen.sample(for: check, at: now, passBias: passBias)
        }
        if gen.chance(0.05) {  // a sample of a check that does not apply now is ignored
            observations.samples["stage-only"] = Sample(check: "stage-only", time: now, value: 0, verdict: .pass)
        }
        return .observed(observations)
    }

    /// Undoing a Deployment's promotion (a bake's rollback), traffic first: it starts only from Baking on a
    /// Deployment and asks for the previous template as the canary first; all traffic goes to that canary only once
    /// it is ready for it (the capacity rule above); the stable is restored only while the router reads back all
    /// traffic on that canary (or in place, when the canary failed); traffic returns to 0 first once restored.
    private func checkUndo(_ d: Decision, before: Rollout, input: DecisionInput, startsRollback: Bool) -> String? {
        var isDeployment = false
        if case .deployment = strategy.target { isDeployment = true }
        if startsRollback, d.rollout.undo != nil {
            guard before.phase == .baking, isDeployment else {
                return "an undo of the promotion started from \(before.phase.rawValue) on \(strategy.target)"
            }
            guard d.effects == [.deployPreviousCanary(promoted: d.rollout.version)], d.rollout.desiredWeight == 0 else {
                return "an undo started with \(d.effects) at weight \(d.rollout.desiredWeight)"
            }
        }
        if startsRollback, before.phase == .baking, isDeployment, d.rollout.undo == nil {
            return "a Deployment's bake rolled back without undoing its promotion: \(d.effects)"
        }
        guard d.effects.contains(.restoreStable(promoted: d.rollout.version)) else { return nil }
        var readBack: Int?
        var canaryFailed = false
        if case .observed(let observations) = input {
            readBack = observations.routerWeight
            if case .failed = observations.canary { canaryFailed = true }
        }
        let restoring = before.undo == .restoreStable || before.undo == .restoreInPlace
        let fromTraffic = before.undo == .previousTraffic && readBack == 100
        let inPlace = before.undo == .previousCanary && canaryFailed
        if !(restoring || fromTraffic || inPlace) {
            return "restoreStable from \(String(describing: before.undo)) with the router at \(String(describing: readBack))"
        }
        return nil
    }

    /// Rollback must be possible from here: traffic to 0 first, RolledBack once the router reads 0.
    private func probeRollback(_ coverage: inout Coverage) -> String? {
        coverage.rollbackProbedFrom.insert(rollout.phase)
        let d = decide(
            rollout, strategy: strategy, input: .command(.rollback(actor: "oncall", reason: "probe")), now: now)
        if let rejection = d.rejection {
            let allowed =
                rollout.phase == .rollingBack || (rollout.phase == .promoting && rollout.stablePromotedAt != nil)
            return allowed ? nil : "rollback refused from \(rollout.phase.rawValue): \(rejection)"
        }
        var rolledBack = d.rollout
        if d.rollout.undo != nil {
            // A Deployment's bake: its promotion is undone traffic first before traffic returns to stable.
            coverage.promotionsUndone += 1
            let steps: [(Observations, [Effect])] = [
                (Observations(routerWeight: 0, canary: .ready), [.setWeight(100)]),
                (Observations(routerWeight: 100, canary: .ready), [.restoreStable(promoted: rollout.version)]),
                (Observations(routerWeight: 100, canary: .ready), [.setWeight(0), .scaleDownCanary, .finalizeTraffic]),
            ]
            for (index, (observations, wanted)) in steps.enumerated() {
                let step = decide(
                    rolledBack, strategy: strategy, input: .observed(observations),
                    now: now + .seconds(index + 1))
                guard step.effects == wanted else {
                    return "undo step \(index) from \(String(describing: rolledBack.undo)): \(step.effects), wanted \(wanted)"
                }
                rolledBack = step.rollout
            }
        } else {
            guard d.rollout.phase == .rollingBack, d.effects.first == .setWeight(0), d.rollout.desiredWeight == 0 else {
                return "rollback from \(rollout.phase.rawValue) did not put traffic to 0 first: \(d.effects)"
            }
        }
        let end = decide(
            rolledBack, strategy: strategy, input: .observed(Observations(routerWeight: 0, canary: .ready)),
            now: now + .seconds(5))
        return end.rollout.phase == .rolledBack ? nil : "rollback did not end RolledBack: \(end.rollout.phase)"
    }

    private mutating func check(
        _ d: Decision, before: Rollout, input: DecisionInput, _ coverage: inout Coverage
    ) -> String? {
        if before.phase.isTerminal, d.rollout != before || !d.effects.isEmpty || !d.events.isEmpty {
            return "terminal rollout changed"
        }
        if d.rejection != nil {
            guard case .command = input else { return "an observation was rejected: \(d.rejection ?? "")" }
            if d.rollout != before || !d.effects.isEmpty || !d.events.isEmpty { return "a rejection changed state" }
            return nil
        }
        if !allowedWeights.contains(d.rollout.desiredWeight) { return "desired weight \(d.rollout.desiredWeight)" }
        var readBackZero = false
        if case .observed(let observations) = input { readBackZero = observations.routerWeight == 0 }
        for effect in d.effects {
            if case .setWeight(let w) = effect, !allowedWeights.contains(w) { return "setWeight(\(w))" }
            // Capacity before traffic: never more weight than the canary is ready for.
            if case .setWeight(let w) = effect, w > world.readyCapacity {
                return "setWeight(\(w)) with a canary ready for \(world.readyCapacity)%"
            }
            // Traffic to stable first: no cleanup unless weight 0 comes before it or is already read back.
            if effect == .scaleDownCanary || effect == .finalizeTraffic, !readBackZero {
                let index = d.effects.firstIndex(of: effect) ?? 0
                if !d.effects[..<index].contains(.setWeight(0)) { return "\(effect) before setWeight(0)" }
            }
            if case .deployCanary(_, let w) = effect, !strategy.stages.contains(where: { $0.weight == w }) {
                return "deployCanary for \(w)%"
            }
        }
        let startsRollback =
            d.events.contains { $0.type == .rollbackStarted }
            || (before.phase != .rollingBack && d.rollout.phase == .rollingBack)
        if startsRollback || (d.rollout.phase == .rollingBack && !d.effects.isEmpty), d.rollout.undo == nil,
            d.effects.first != .setWeight(0)
        {
            return "rollback's first effect is \(String(describing: d.effects.first)), not setWeight(0)"
        }
        if let violation = checkUndo(d, before: before, input: input, startsRollback: startsRollback) {
            return violation
        }
        if (d.rollout.pause != nil) != (d.rollout.phase == .paused) { return "pause cause \(d.rollout.pause as Any)" }
        let effectiveNow = max(now, before.updatedAt)
        for event in d.events {
            if event.time != effectiveNow { return "event at \(event.time), decided at \(effectiveNow)" }
            if event.time < lastEventTime { return "event time went back: \(event.time) < \(lastEventTime)" }
            lastEventTime = event.time
        }
        if case .command(.promote) = input { holdWaived = true }
        passedThisTick = []
        if case .observed(let observations) = input {
            recordEvidence(observations, before: before, at: effectiveNow)
        }
        if let violation = checkNoiseRules(d) { return violation }
        for event in d.events where event.type == .stageCompleted {
            coverage.stagesCompleted += 1
            guard case .observed(let observations) = input, observations.routerWeight == before.desiredWeight else {
                return "a stage ended on a tick where the router did not read back its weight"
            }
            if let violation = checkStageEnd(before: before, at: effectiveNow) { return violation }
        }
        // A bake ends Succeeded before its time only by a command (promote, supersede).
        if before.phase == .baking, d.rollout.phase == .succeeded, case .observed = input,
            let started = before.bakeStartedAt, let bake = strategy.bake, effectiveNow - started < bake.duration
        {
            return "the bake ended after \(effectiveNow - started) of \(bake.duration)"
        }
        // Never promoted unless the last sample of every check before promotion passed.
        if d.events.contains(where: { $0.type == .promoting }) {
            for check in strategy.checks(inStage: before.stageIndex) where lastVerdict[check.name] != .pass {
                let last = lastVerdict[check.name]?.rawValue ?? "none"
                return "promoted while the last sample of \(check.name) was \(last)"
            }
        }
        if d.rollout.stageIndex != visitStage {
            visitStage = d.rollout.stageIndex
            passesInVisit = []
            heldInVisit = .zero
            lastTickInVisit = nil
            holdWaived = holdWaived && d.rollout.fullPromotionRequested
            noDataTold.formIntersection(strategy.checks(inStage: visitStage).map(\.name))
        }
        return nil
    }

    /// One `CheckNoData` per no-data streak, however its provider text varies; its end is told with the count.
    private mutating func checkNoiseRules(_ d: Decision) -> String? {
        for event in d.events {
            guard case .string(let check)? = event.data["check"] else { continue }
            if event.type == .checkNoData {
                if noDataTold.contains(check) { return "a second CheckNoData in one streak of \(check)" }
                noDataTold.insert(check)
                if case .string(let reason)? = event.data["reason"], reason != sanitizedExcerpt(reason) {
                    return "CheckNoData reason not sanitized: \(reason)"
                }
            } else if event.data["noDataSamples"] != nil {
                noDataTold.remove(check)
            }
        }
        return nil
    }

    /// The model of evidence: a real pass (a finite value within the thresholds) of a sample taken after the
    /// stage's weight was confirmed; no-data and claimed passes without a value never count.
    private mutating func recordEvidence(_ observations: Observations, before: Rollout, at now: Timestamp) {
        guard before.phase == .progressing || before.phase == .paused, before.desiredWeight > 0 else { return }
        let checks = strategy.checks(inStage: before.stageIndex)
        for check in checks {
            guard let sample = observations.samples[check.name] else { continue }
            if let last = lastSampleTime[check.name], sample.time <= last { continue }
            lastSampleTime[check.name] = sample.time
            guard sample.verdict != .noData, let value = sample.value, value.isFinite else {
                lastVerdict[check.name] = .noData
                continue
            }
            let pass = (check.max.map { value <= $0 } ?? true) && (check.min.map { value >= $0 } ?? true)
            lastDecisive[check.name] = pass ? .pass : .breach
            lastVerdict[check.name] = pass ? .pass : .breach
            if pass, let started = before.stageStartedAt, sample.time >= started {
                passesInVisit.insert(check.name)
                passedThisTick.insert(check.name)
            }
        }
        guard let started = before.stageStartedAt else { return }
        if before.phase == .progressing, checks.allSatisfy({ passedThisTick.contains($0.name) }) {
            let gap = now - (lastTickInVisit ?? started)
            heldInVisit += min(max(.zero, gap), strategy.analysis.interval)
        }
        lastTickInVisit = now
    }

    private func checkStageEnd(before: Rollout, at now: Timestamp) -> String? {
        let stage = strategy.stages[before.stageIndex]
        for check in strategy.checks(inStage: before.stageIndex) {
            if !passesInVisit.contains(check.name) {
                return "stage \(stage.name) ended without a pass of \(check.name)"
            }
            if lastDecisive[check.name] != .pass { return "stage \(stage.name) ended with \(check.name) breaching" }
            if lastVerdict[check.name] != .pass {
                return "stage \(stage.name) ended while the latest sample of \(check.name) had no data"
            }
            if !passedThisTick.contains(check.name) {
                return "stage \(stage.name) ended on a tick without a pass of \(check.name)"
            }
        }
        // The weight may be confirmed by this very tick (then only a stage without checks can end in it).
        let started = before.stageStartedAt ?? now
        if !holdWaived {
            if stage.pause { return "pause stage \(stage.name) ended without promote" }
            if now - started < (stage.hold ?? .zero) { return "stage \(stage.name) ended before its hold" }
            if heldInVisit < (stage.hold ?? .zero) {
                return "stage \(stage.name) ended with \(heldInVisit) of its hold backed by passes"
            }
        }
        return nil
    }
}
