/// Commands from humans and CI (docs/api.md). A command that makes no sense in the current phase is
/// refused with `Decision.rejection` (HTTP 409) and changes nothing.
extension Decider {
    mutating func apply(_ command: Command) {
        switch command {
        case .rollback(let actor, let reason):
            requestRollback(cause: .command(actor: actor, reason: reason), actor: actor, reason: reason)
        case .supersede(let actor, let by):
            // The `Superseded` event is the new rollout's (Rollout.start), written once it exists: here the new
            // rollout is only asked for, and it may never be created (the rollback may not finish).
            if rollout.phase == .baking {
                // The baked version is the stable one already; the new rollout goes on from it.
                endBakeEarly(actor: actor, why: "superseded by \(by)")
            } else if rollout.phase == .rollingBack {
                // Already on its way out: the new rollout only has to wait for it. Weight 0 is asked for again,
                // except while a Deployment's promotion is undone: that goes on step by step and ends at weight 0
                // (continueUndo); cleanup now would scale down the canary that is to take the traffic.
                if rollout.undo == nil { addCleanup() }
            } else if rollout.phase == .promoting, rollout.stablePromotedAt != nil {
                reject(
                    "rollout \(rollout.id) is finishing the promotion of \(rollout.version), which is already the "
                        + "stable version; it cannot be superseded, start the new rollout once it has Succeeded")
            } else {
                startRollback(cause: .superseded(actor: actor, by: by), actor: actor, reason: "superseded by \(by)")
            }
        case .pause(let actor): pause(actor: actor)
        case .resume(let actor): resume(actor: actor)
        case .promote(let actor, let full): promote(actor: actor, full: full)
        }
    }

    /// Rollback is accepted from every non-terminal phase except two: already rolling back, and Promoting
    /// once `promoteStable` was confirmed (the stable already runs the new version; only a new rollout of
    /// the previous version can go back). Baking is accepted: the pools swap back (startRollback).
    private mutating func requestRollback(cause: RollbackCause, actor: String, reason: String) {
        if rollout.phase == .rollingBack {
            reject("rollout \(rollout.id) is already rolling back: \(rollout.endReason ?? "")")
            return
        }
        if rollout.phase == .promoting, rollout.stablePromotedAt != nil {
            reject(
                "rollout \(rollout.id) is past the point of no return: \(rollout.version) is already the stable "
                    + "version; start a rollout of the previous version to go back")
            return
        }
        startRollback(cause: cause, actor: actor, reason: reason)
    }

    private mutating func pause(actor: String) {
        guard rollout.phase == .pending || rollout.phase == .progressing else {
            reject(
                "rollout \(rollout.id) is \(rollout.phase.rawValue); only a Pending or Progressing rollout can pause")
            return
        }
        rollout.phase = .paused
        rollout.pause = .manual(actor: actor)
        emit(
            .paused, actor: actor, reason: "Manual",
            message: "paused by \(actor): stage progression stops, analysis keeps running")
    }

    private mutating func resume(actor: String) {
        guard rollout.phase == .paused else {
            reject("rollout \(rollout.id) is \(rollout.phase.rawValue), not Paused; nothing to resume")
            return
        }
        if rollout.pause == .stageGate {
            reject("stage \(stage.name) of rollout \(rollout.id) waits for `sluice promote`, not `resume`")
            return
        }
        let cause = rollout.pause
        leavePause()
        var message = "resumed by \(actor): stage progression restarts"
        if case .breach(let check) = cause, rollout.checks[check]?.consecutiveBreaches ?? 0 > 0 {
            message += "; \(check) still has an open breach streak, so another breach pauses again"
        }
        if case .noData(let check) = cause, rollout.checks[check]?.consecutiveNoData ?? 0 > 0 {
            message += "; \(check) still has no data, so another no-data sample pauses again"
        }
        emit(.resumed, actor: actor, reason: "Manual", message: message)
    }

    /// `promote` waives the current stage's hold or pause gate, never its evidence: the stage still ends only
    /// after a pass of every check with no open breach streak (docs/architecture.md rule 3). `full` then goes
    /// straight to the last (100 %) stage, whose hold is waived too.
    private mutating func promote(actor: String, full: Bool) {
        switch rollout.phase {
        case .progressing, .paused: break
        case .baking:
            endBakeEarly(actor: actor, why: "sluice promote")
            return
        case .pending:
            reject("rollout \(rollout.id) is Pending: the canary is not ready yet, there is no stage to end")
            return
        case .promoting:
            reject("rollout \(rollout.id) is already Promoting")
            return
        case .rollingBack, .succeeded, .rolledBack, .failed:
            reject("rollout \(rollout.id) is \(rollout.phase.rawValue); it cannot be promoted")
            return
        }
        if full, rollout.stageIndex == lastStageIndex, rollout.holdWaivedBy != nil {
            reject("rollout \(rollout.id) is already promoting to 100% as soon as every check passes")
            return
        }
        if rollout.phase == .paused { leavePause() }
        rollout.holdWaivedBy = actor
        if full { rollout.fullPromotionRequested = true }
        var data: [String: JSONValue] = ["full": .bool(full)]
        // The current stage already ended and the next one is being entered: go to the last one instead.
        if full, rollout.stageStartedAt == nil, rollout.desiredWeight > 0, rollout.stageIndex != lastStageIndex {
            moveToStage(lastStageIndex)
        }
        let missing = missingEvidence()
        data["waitingFor"] = .array(missing.map { .string($0) })
        let target = full ? "100%" : "the next stage"
        let message =
            missing.isEmpty
            ? "promotion requested by \(actor): the hold of stage \(stage.name) is waived, moving on to \(target)"
            : "promotion requested by \(actor): the hold of stage \(stage.name) is waived, but a stage never ends "
                + "without evidence; moving on to \(target) once these pass: \(missing.joined(separator: ", "))"
        emit(.promotionRequested, actor: actor, reason: "Manual", message: message, data: data)
    }

    /// Back from Paused to where the rollout was: Pending before any traffic, else Progressing. The hold held
    /// before the pause still counts; the paused time does not.
    private mutating func leavePause() {
        rollout.phase = rollout.desiredWeight == 0 ? .pending : .progressing
        rollout.pause = nil
        restartHoldClock()
    }
}
