extension NotificationTarget {
    /// The event types a notification may subscribe to with `on:` (every type a rollout records).
    public static let eventTypes: [EventType] = [
        .rolloutStarted, .canaryDeployed, .stageStarted, .trafficShifted, .stageCompleted, .checkBreached,
        .checkRecovered, .checkNoData, .providerError, .paused, .resumed, .promotionRequested, .promoting,
        .promoted, .bakeStarted, .stablePromoted, .rollbackStarted, .rolledBack, .superseded, .failed, .driftDetected, .driftCorrected,
        .effectFailed,
    ]
}
