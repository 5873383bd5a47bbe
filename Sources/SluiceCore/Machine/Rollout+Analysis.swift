/// Analysis (docs/strategy.md "analysis"): each sample updates its check's streaks; limits turn into a rollback
/// or a pause. Events are emitted on transitions only (a streak starts, a streak ends), never per routine
/// sample, and never keyed on provider text (which varies: "900 ms", "901 ms"): 10k rollouts with 2 checks
/// every 10 s, or one flapping provider, must not flood the log.
extension Rollout {
    /// The checks the controller should sample before the next `decide`: the current stage's while the canary
    /// has traffic (Progressing or Paused with a weight above 0, and Promoting until `promoteStable` is
    /// confirmed, when it serves 100 %), and the bake's while Baking; none otherwise, since `decide` ignores them.
    public func checksToSample(in strategy: Strategy) -> [Check] {
        switch phase {
        case .progressing, .paused: guard desiredWeight > 0 else { return [] }
        case .promoting: guard stablePromotedAt == nil else { return [] }
        case .baking: return strategy.bakeChecks
        case .pending, .rollingBack, .succeeded, .rolledBack, .failed: return []
        }
        return strategy.checks(inStage: stageIndex)
    }
}

extension Decider {
    /// The verdict `decide` trusts: recomputed from the value against the check's thresholds, so that a
    /// sample without a finite value is no-data whatever the provider said, and no-data is never a pass.
    static func verdict(of sample: Sample, for check: Check) -> (SampleVerdict, Double?) {
        guard sample.verdict != .noData, let value = sample.value, value.isFinite else { return (.noData, nil) }
        return (check.verdict(for: value), value)
    }

    /// What one sample makes of a check: a threshold check's verdict (no-data below its `minCount`), or a
    /// comparison's, from its counts and the evidence gathered so far (docs/judge.md).
    struct Assessment {
        var verdict: SampleVerdict
        var value: Double?
        /// Why there is no data (or, when `collecting`, why it is not a pass yet).
        var reason: String?
        /// A comparison without its stage's minimum evidence: not a pass, and not a no-data streak either.
        var collecting = false
        var evidence: ComparisonEvidence?
        var explanation: String?
        /// The comparison's silent looks in a row, this one included (0 when this look was not silent).
        var silentLooks = 0
    }

    static func assess(
        _ sample: Sample, for check: Check, state: CheckState, countsForStage: Bool, canaryWeight: Int? = nil
    ) -> Assessment {
        if let compare = check.compare {
            if sample.counts == nil {
                return Assessment(verdict: .noData, reason: sample.reason ?? "no counts", evidence: state.evidence)
            }
            let (evidence, outcome) = compare.judge(
                sample.counts, evidence: state.evidence, countsForStage: countsForStage, at: sample.time,
                canaryWeight: canaryWeight)
            let value = evidence.map { compare.test.eValue($0) }
            let explanation = evidence.map { compare.explanation($0) }
            switch outcome {
            case .pass:
                return Assessment(verdict: .pass, value: value, evidence: evidence, explanation: explanation)
            case .breach:
                return Assessment(verdict: .breach, value: value, evidence: evidence, explanation: explanation)
            case .collecting(let why):
                return Assessment(
                    verdict: .noData, value: value, reason: why, collecting: true, evidence: evidence,
                    explanation: explanation)
            case .noData(let why):
                return Assessment(verdict: .noData, reason: sample.reason ?? why, evidence: evidence)
            case .silent(let why):
                let looks = (state.silentLooks ?? 0) + 1
                guard looks >= Comparison.silentLooksToBreach else {
                    // One empty window can be a scrape that fell outside it: not a pass, not a no-data streak.
                    let wait = "\(why); silent on \(looks) look(s), \(Comparison.silentLooksToBreach) in a row are a breach"
                    return Assessment(
                        verdict: .noData, reason: wait, collecting: true, evidence: evidence, silentLooks: looks)
                }
                return Assessment(
                    verdict: .breach, evidence: evidence, explanation: "\(why) on \(looks) looks in a row",
                    silentLooks: looks)
            }
        }
        let (verdict, value) = Self.verdict(of: sample, for: check)
        if let minCount = check.minCount, verdict != .noData {
            guard let count = sample.count, count.isFinite else {
                return Assessment(verdict: .noData, reason: "minCount: no count for the window")
            }
            if count < minCount.min {
                let reason = "minCount: \(ComparisonText.count(count)) in the window, fewer than \(ComparisonText.count(minCount.min))"
                return Assessment(verdict: .noData, reason: reason)
            }
            return Assessment(verdict: verdict, value: value, explanation: "\(check.name) = \(value ?? 0) over a count of \(ComparisonText.count(count)) (minCount \(ComparisonText.count(minCount.min)))")
        }
        return Assessment(verdict: verdict, value: value, reason: verdict == .noData ? sample.reason : nil)
    }

    mutating func analyze(_ samples: [String: Sample]) {
        // A pass counts for the stage only when its weight was confirmed before this tick's samples were taken.
        let stageStartedAt = rollout.stageStartedAt
        var breachLimit: String?
        var noDataLimit: String?
        for check in rollout.checksToSample(in: strategy) {
            guard let sample = samples[check.name] else { continue }
            var state = rollout.checks[check.name] ?? CheckState()
            // A sample already counted (the same tick decided twice, e.g. after a failed store write) counts once.
            if let last = state.lastSample, sample.time <= last.time { continue }
            let countsForStage = stageStartedAt.map { sample.time >= $0 } ?? false
            // The weight the canary has for sure: the stage's, once the router confirmed it before this sample.
            let canaryWeight = countsForStage ? rollout.desiredWeight : nil
            let assessment = Self.assess(
                sample, for: check, state: state, countsForStage: countsForStage, canaryWeight: canaryWeight)
            let (verdict, value) = (assessment.verdict, assessment.value)
            let reason = verdict == .noData ? sanitizedExcerpt(assessment.reason ?? sample.reason ?? "no value") : nil
            state.evidence = assessment.evidence
            state.silentLooks = assessment.silentLooks > 0 ? assessment.silentLooks : nil
            if assessment.collecting {
                // Good counts, too few of them for this stage: neither a pass nor a no-data streak.
                state.lastSample = Sample(
                    check: check.name, time: sample.time, value: value, verdict: .noData, reason: reason,
                    counts: sample.counts, explanation: assessment.explanation)
                rollout.checks[check.name] = state
                continue
            }
            var data: [String: JSONValue] = ["check": .string(check.name)]
            if let value { data["value"] = .number(value) }
            if let max = check.max { data["max"] = .number(max) }
            if let min = check.min { data["min"] = .number(min) }
            data.merge(Self.evidenceData(check, assessment, sample)) { current, _ in current }
            let because = assessment.explanation.map { ": \($0)" } ?? ""
            // The end of a no-data streak is told once, with its length, on the event of the sample that ends it.
            let noDataEnded = verdict != .noData && state.consecutiveNoData > 0
            var noDataTail = ""
            if noDataEnded {
                data["noDataSamples"] = .number(Double(state.consecutiveNoData))
                noDataTail = " after \(state.consecutiveNoData) sample(s) without data"
            }
            switch verdict {
            case .pass:
                if state.consecutiveBreaches > 0 || noDataEnded {
                    data["after"] = .string(state.consecutiveBreaches > 0 ? "breach" : "no-data")
                    emit(
                        .checkRecovered, message: "\(check.name) passes again (\(value ?? 0))\(noDataTail)\(because)",
                        data: data)
                }
                state.consecutiveBreaches = 0
                state.consecutiveNoData = 0
                if let stageStartedAt, sample.time >= stageStartedAt {
                    state.passedInStage = true
                    passedNow.insert(check.name)
                }
            case .breach:
                // A breach ends a no-data streak; a no-data sample neither extends nor ends a breach streak.
                state.consecutiveNoData = 0
                state.consecutiveBreaches += 1
                // Told when a breach streak starts, and when data comes back still breaching.
                if state.consecutiveBreaches == 1 || noDataEnded {
                    data["failureLimit"] = .number(Double(strategy.analysis.failureLimit))
                    data["consecutiveBreaches"] = .number(Double(state.consecutiveBreaches))
                    emit(
                        .checkBreached, reason: "Breach",
                        message: "\(check.name) = \(value ?? 0) breaches \(thresholds(check))\(noDataTail)\(because)",
                        data: data)
                }
                if state.consecutiveBreaches >= strategy.analysis.failureLimit, breachLimit == nil {
                    breachLimit = check.name
                }
            case .noData:
                state.consecutiveNoData += 1
                if state.consecutiveNoData == 1 {
                    data["reason"] = .string(reason ?? "")
                    data["noDataLimit"] = .number(Double(strategy.analysis.noDataLimit))
                    emit(
                        .checkNoData, reason: "NoData", message: "\(check.name) has no data: \(reason ?? "")",
                        data: data)
                }
                if state.consecutiveNoData >= strategy.analysis.noDataLimit, noDataLimit == nil {
                    noDataLimit = check.name
                }
            }
            state.lastSample = Sample(
                check: check.name, time: sample.time, value: value, verdict: verdict, reason: reason,
                counts: sample.counts, count: sample.count, explanation: assessment.explanation)
            rollout.checks[check.name] = state
        }
        if let check = breachLimit {
            let streak = rollout.checks[check]?.consecutiveBreaches ?? 0
            let why = "\(check) breached \(streak) consecutive time(s) (failureLimit \(strategy.analysis.failureLimit))"
            if strategy.rollback.automatic {
                startRollback(cause: .breach(check: check), actor: Event.controller, reason: why)
                return
            }
            pauseForAnalysis(
                .breach(check: check), reasonCode: "CheckBreached", why: why + "; rollback.automatic is false")
        }
        if let check = noDataLimit {
            let why = "\(check) had no data \(strategy.analysis.noDataLimit) consecutive time(s) (noDataLimit)"
            switch strategy.analysis.onNoData {
            case .rollback:
                startRollback(cause: .noData(check: check), actor: Event.controller, reason: why)
            case .pause:
                pauseForAnalysis(.noData(check: check), reasonCode: "NoData", why: why)
            }
        }
    }

    /// Pauses a progressing rollout for a human; an already paused one stays paused (and keeps analysing).
    private mutating func pauseForAnalysis(_ cause: PauseCause, reasonCode: String, why: String) {
        guard rollout.phase == .progressing else { return }
        rollout.phase = .paused
        rollout.pause = cause
        emit(.paused, reason: reasonCode, message: "paused: \(why); `sluice resume` or `sluice rollback`")
    }

    /// The per-stage part of analysis starts over; streaks of checks that still apply carry on.
    mutating func resetChecks() {
        var checks: [String: CheckState] = [:]
        for check in strategy.checks(inStage: rollout.stageIndex) {
            var state = rollout.checks[check.name] ?? CheckState()
            state.passedInStage = false
            // A comparison's e-value carries on (each interval's exposures are in it); its minimum is per stage.
            state.evidence?.stageCanaryRequests = 0
            checks[check.name] = state
        }
        rollout.checks = checks
    }

    /// The counts, test statistic and boundary behind a verdict, for the event's data.
    private static func evidenceData(_ check: Check, _ assessment: Assessment, _ sample: Sample) -> [String: JSONValue] {
        var data: [String: JSONValue] = [:]
        if let count = sample.count, let minCount = check.minCount {
            data["count"] = .number(count)
            data["minCount"] = .number(minCount.min)
        }
        guard let compare = check.compare, let evidence = assessment.evidence else { return data }
        data["kind"] = .string(compare.kind.rawValue)
        data["eValue"] = .number(min(compare.test.eValue(evidence), Double.greatestFiniteMagnitude))
        data["boundary"] = .number(compare.test.boundary)
        data["alpha"] = .number(compare.alpha)
        data[compare.kind.toleranceKey] = .number(compare.maxIncrease)
        data["canaryEvents"] = .number(evidence.canaryEvents)
        data["canaryRequests"] = .number(evidence.canaryRequests)
        data["baselineEvents"] = .number(evidence.baselineEvents)
        data["baselineRequests"] = .number(evidence.baselineRequests)
        data["intervals"] = .number(Double(evidence.intervals))
        if let explanation = assessment.explanation { data["explanation"] = .string(explanation) }
        return data
    }

    private func thresholds(_ check: Check) -> String {
        if let compare = check.compare {
            return "the \(compare.kind.rawValue) comparison with stable (e-value boundary \(ComparisonText.number(compare.test.boundary)))"
        }
        return switch (check.min, check.max) {
        case (let min?, let max?): "[\(min), \(max)]"
        case (nil, let max?): "max \(max)"
        case (let min?, nil): "min \(min)"
        case (nil, nil): "no threshold"
        }
    }
}
