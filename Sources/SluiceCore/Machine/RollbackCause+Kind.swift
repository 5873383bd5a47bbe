extension RollbackCause {
    /// A rollback's cause without its details: the `reason` of the events it writes, and the `trigger` label of
    /// `sluice_rollbacks_total`.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case manual = "Manual"
        case superseded = "Superseded"
        case checkBreached = "CheckBreached"
        case noData = "NoData"
        case canaryFailed = "CanaryFailed"
        case progressDeadlineExceeded = "ProgressDeadlineExceeded"

        /// The `trigger` label of `sluice_rollbacks_total` (alert rules match on these: deploy/prometheus).
        public var metricLabel: String {
            switch self {
            case .manual: "manual"
            case .superseded: "superseded"
            case .checkBreached: "check_breached"
            case .noData: "no_data"
            case .canaryFailed: "canary_failed"
            case .progressDeadlineExceeded: "progress_deadline_exceeded"
            }
        }
    }

    /// Which cause this is.
    public var kind: Kind {
        switch self {
        case .command: .manual
        case .superseded: .superseded
        case .breach: .checkBreached
        case .noData: .noData
        case .canaryFailed: .canaryFailed
        case .progressDeadline: .progressDeadlineExceeded
        }
    }
}
