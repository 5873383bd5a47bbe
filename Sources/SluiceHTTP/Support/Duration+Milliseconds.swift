extension Duration {
    /// Whole milliseconds, rounded up so a short positive timeout never becomes 0 ("no timeout" to curl).
    var roundedUpMilliseconds: Int {
        let (seconds, attoseconds) = components
        let millis = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int(max(0, millis))
    }
}
