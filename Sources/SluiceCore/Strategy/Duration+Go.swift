/// Go-style durations (`90s`, `30m`, `1h30m`, `500ms`, `1.5h`), the form strategy files use.
extension Duration {
    private static let goUnits: [(name: String, nanoseconds: Int64)] = [
        ("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000),
        ("ms", 1_000_000), ("us", 1_000), ("µs", 1_000), ("ns", 1),
    ]

    /// Parses a Go-style duration: one or more `<number><unit>` with units `h`, `m`, `s`, `ms`,
    /// `us` (or `µs`), `ns`; a number may have a fraction (`1.5h`). `0` alone is zero. Signs,
    /// spaces and values past ~292 years are rejected (nil).
    public init?(go text: String) {
        if text == "0" {
            self = .zero
            return
        }
        let scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { return nil }
        var total: Int64 = 0
        var i = 0
        while i < scalars.count {
            var whole: Int64 = 0
            var digits = 0
            while i < scalars.count, let d = Self.digit(scalars[i]) {
                let (times, o1) = whole.multipliedReportingOverflow(by: 10)
                let (plus, o2) = times.addingReportingOverflow(d)
                guard !o1, !o2 else { return nil }
                whole = plus
                digits += 1
                i += 1
            }
            var fraction: [Int64] = []
            if i < scalars.count, scalars[i] == "." {
                i += 1
                while i < scalars.count, let d = Self.digit(scalars[i]) {
                    if fraction.count < 18 { fraction.append(d) }
                    i += 1
                }
            }
            guard digits + fraction.count > 0 else { return nil }
            var unitEnd = i
            while unitEnd < scalars.count, Self.digit(scalars[unitEnd]) == nil, scalars[unitEnd] != "." {
                unitEnd += 1
            }
            let unit = String(String.UnicodeScalarView(scalars[i..<unitEnd]))
            guard let perUnit = Self.goUnits.first(where: { $0.name == unit })?.nanoseconds else { return nil }
            i = unitEnd
            let (wholeNanos, o3) = whole.multipliedReportingOverflow(by: perUnit)
            guard !o3 else { return nil }
            // The fraction's share, truncated to whole nanoseconds as Go does.
            var fractionNanos: Int64 = 0
            var scale = perUnit
            for d in fraction {
                scale /= 10
                guard scale > 0 else { break }
                fractionNanos += d * scale
            }
            let (sum1, o4) = total.addingReportingOverflow(wholeNanos)
            let (sum2, o5) = sum1.addingReportingOverflow(fractionNanos)
            guard !o4, !o5 else { return nil }
            total = sum2
        }
        self = .nanoseconds(total)
    }

    private static func digit(_ scalar: Unicode.Scalar) -> Int64? {
        guard scalar.value >= 48, scalar.value <= 57 else { return nil }
        return Int64(scalar.value - 48)
    }

    /// Whole nanoseconds (sub-nanosecond parts are dropped; saturates past ~292 years).
    public var nanosecondsValue: Int64 {
        let (seconds, attoseconds) = components
        let (ns, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = ns.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? (seconds < 0 ? .min : .max) : sum
    }

    /// The shortest Go-style text for this duration, zero parts left out: `30m`, `1h30m`, `1m30s`,
    /// `500ms`, `0s`. `Duration(go:)` reads it back to the same value.
    public var goString: String {
        var n = nanosecondsValue
        if n == 0 { return "0s" }
        var text = ""
        if n < 0 {
            text = "-"
            n = n == .min ? .max : -n
        }
        for (name, size) in Self.goUnits where name != "µs" {
            let count = n / size
            if count > 0 {
                text += "\(count)\(name)"
                n -= count * size
            }
        }
        return text
    }
}
