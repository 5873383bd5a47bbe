/// A Prometheus histogram: counts per upper bound, plus sum and count. The controller observes one value
/// per tick into its snapshot's histograms; `/metrics` renders them cumulatively.
public struct Histogram: Sendable, Hashable {
    /// Upper bounds in seconds, ascending; `+Inf` is implied.
    public var bounds: [Double]
    /// Observations ≤ each bound and above the one before (not cumulative; rendering accumulates).
    public var bucketCounts: [Int]
    public var sum: Double
    public var count: Int

    /// Prometheus' default buckets: durations of work that takes milliseconds to seconds.
    public static let defaultBounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Finer at the bottom, for lateness of a schedule that is usually met within a millisecond.
    public static let latenessBounds: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]

    public init(bounds: [Double] = Histogram.defaultBounds) {
        self.bounds = bounds
        self.bucketCounts = Array(repeating: 0, count: bounds.count)
        self.sum = 0
        self.count = 0
    }

    /// Records one observation.
    public mutating func observe(_ value: Double) {
        if let index = bounds.firstIndex(where: { value <= $0 }) { bucketCounts[index] += 1 }
        sum += value
        count += 1
    }
}
