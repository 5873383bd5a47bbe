extension Rollout {
    /// Whole analysis intervals since this rollout's next step was due, 0 before it is due; nil in a phase where
    /// the next step is not Sluice's to take on a schedule (paused for a human or a gate, promoting, rolling back,
    /// finished).
    ///
    /// Due is when the current stage's weight was asked for, while the router has not confirmed it (the canary is
    /// not ready or the router refuses), or when the stage's hold ended (a stage ends at its first tick after
    /// that with every check passed). Counting intervals past that point, rather than exposing a timestamp, lets
    /// one rule ("10 intervals overdue") fit every strategy whatever its interval and holds.
    public func overdueIntervals(strategy: Strategy, now: Timestamp) -> Int? {
        guard phase == .pending || phase == .progressing, strategy.stages.indices.contains(stageIndex) else {
            return nil
        }
        let due: Timestamp
        if let started = stageStartedAt {
            due = strategy.stages[stageIndex].hold.map { started + $0 } ?? started
        } else {
            due = canaryRequestedAt ?? createdAt
        }
        let interval = max(1, strategy.analysis.interval.milliseconds)
        return Int(max(0, (now - due).milliseconds) / interval)
    }
}
