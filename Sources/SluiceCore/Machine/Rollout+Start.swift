extension Rollout {
    /// The first state of a rollout of `version` with `strategy` (revision `revision`), its `RolloutStarted`
    /// event and its first effect: canary capacity for the first stage, before any traffic.
    ///
    /// `pools` are the `upstreams` pools in their current roles (after earlier swaps); nil takes them from the
    /// strategy for an `upstreams` target. `supersedes` is the rollout that `--supersede` rolled back for this one
    /// (its `Superseded` event is this rollout's, written only once this one exists). A strategy without stages is
    /// refused with `rejection`.
    public static func start(
        id: String, strategy: Strategy, revision: Int, version: String, actor: String, pools: Pools?,
        supersedes: String? = nil, now: Timestamp
    ) -> Decision {
        var rollout = Rollout(
            id: id, strategy: strategy.key, strategyRevision: revision, version: version, createdAt: now,
            canaryRequestedAt: now)
        if case .upstreams(let stable, let canary, _) = strategy.target {
            rollout.pools = pools ?? Pools(stable: stable, canary: canary)
        }
        guard let first = strategy.stages.first else {
            return Decision(rollout: rollout, rejection: "strategy \(strategy.key) has no stages")
        }
        var decider = Decider(rollout: rollout, strategy: strategy, now: now)
        decider.resetChecks()
        decider.add(.deployCanary(version: version, weight: first.weight))
        decider.emit(
            .rolloutStarted, actor: actor,
            message: "rollout of \(version) started by \(actor): \(strategy.stages.map { "\($0.weight)%" })",
            data: [
                "version": .string(version), "revision": .number(Double(revision)),
                "stages": .array(strategy.stages.map { .string("\($0.name):\($0.weight)") }),
            ])
        if let supersedes {
            decider.emit(
                .superseded, actor: actor, reason: "Superseded",
                message: "rollout \(id) supersedes \(supersedes), which was rolled back for it (--supersede)",
                data: ["supersedes": .string(supersedes)])
        }
        return decider.decision
    }
}
