import Foundation

/// The arithmetic every router shares: validating a canary weight, turning it into per-backend
/// weights, and turning weights read back from a router into a canary percentage.
public enum TrafficSplit {
    /// Rejects a weight outside 0...100 before any call reaches a router.
    public static func validate(_ weight: Int, router: String) throws {
        guard (0...100).contains(weight) else {
            throw ProviderError(
                .invalidConfiguration, provider: router,
                "canary weight \(weight) is outside 0...100; nothing was changed")
        }
    }

    /// The canary percentage of `canary` out of `total`, rounded to the nearest whole percent.
    /// Nil when nothing gets any traffic.
    public static func percent(canary: Int, total: Int) -> Int? {
        guard total > 0 else { return nil }
        return (canary * 200 + total) / (total * 2)
    }

    /// Per-member weights for a stable pool of `stableCount` and a canary pool of `canaryCount`
    /// members: each pool's share spread evenly over its members, reduced by the common divisor so
    /// weighted round robin mixes in the smallest blocks (95:5 becomes 19:1).
    public static func memberWeights(canaryWeight weight: Int, stableCount: Int, canaryCount: Int) -> (
        stable: Int, canary: Int
    ) {
        // Each stable member gets (100 - w) * canaryCount and each canary member w * stableCount, so
        // the pools' totals stay in the exact ratio (100 - w) : w whatever their sizes.
        let stable = (100 - weight) * max(canaryCount, 1)
        let canary = weight * max(stableCount, 1)
        let divisor = gcd(stable, canary)
        guard divisor > 0 else { return (stable, canary) }
        return (stable / divisor, canary / divisor)
    }

    /// An integer from a JSONSerialization value (NSNumber, Int, or a whole Double); nil otherwise.
    static func integer(_ value: Any?) -> Int? {
        switch value {
        case let int as Int: return int
        case let double as Double where double.rounded() == double && abs(double) < 1e15: return Int(double)
        case let number as NSNumber: return number.intValue
        default: return nil
        }
    }

    /// Greatest common divisor; gcd(n, 0) is n.
    static func gcd(_ a: Int, _ b: Int) -> Int {
        var (x, y) = (abs(a), abs(b))
        while y != 0 { (x, y) = (y, x % y) }
        return x
    }
}
