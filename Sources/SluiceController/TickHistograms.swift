import Prometheus

/// The controller's per-tick histograms, in a swift-prometheus registry that `/metrics` writes out: a recorded tick
/// observes its duration and every tick its lateness, one value each. swift-prometheus writes each bucket's `le` as
/// Swift prints the bound (`le="1.0"`, as Prometheus 3 stores it whatever the exporter wrote; docs/operations.md).
public final class TickHistograms: Sendable {
    /// Prometheus' default buckets: durations of work that takes milliseconds to seconds.
    public static let defaultBounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Finer at the bottom, for lateness of a schedule that is usually met within a millisecond.
    public static let latenessBounds: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]

    private let registry = PrometheusCollectorRegistry()
    /// How long each recorded tick took from the start of its observation to the commit of its decision, in seconds
    /// of the controller's clock.
    public let reconcileDuration: ValueHistogram
    /// How late each tick's observation started against its schedule (the previous tick's start plus the interval),
    /// in seconds of the controller's clock. A tick that a command woke early is on time.
    public let tickLateness: ValueHistogram

    public init() {
        reconcileDuration = registry.makeValueHistogram(
            descriptor: .init(
                metricName: "sluice_reconcile_duration_seconds", unitName: "",
                helpText: "Duration of each reconcile tick of a rollout, from the start of its observation to the commit of its decision."),
            buckets: Self.defaultBounds)
        tickLateness = registry.makeValueHistogram(
            descriptor: .init(
                metricName: "sluice_tick_lateness_seconds", unitName: "",
                helpText: "How late each tick's observation started against its schedule (previous tick's start plus the interval)."),
            buckets: Self.latenessBounds)
    }

    /// Both histograms in the Prometheus text format.
    public func exposition() -> String { registry.emitToString() }
}
