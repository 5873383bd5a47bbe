import Foundation
import Testing

@testable import SluiceCore

@Test(arguments: [
    (Int64(0), "1970-01-01T00:00:00.000Z"),
    (Int64(1_795_000_000_123), "2026-11-18T11:06:40.123Z"),
    (Int64(951_782_400_000), "2000-02-29T00:00:00.000Z"),
    (Int64(-1), "1969-12-31T23:59:59.999Z"),
])
func rfc3339(ms: Int64, expected: String) {
    #expect(Timestamp(millisecondsSinceEpoch: ms).rfc3339 == expected)
}

@Test func durationArithmetic() {
    let t = Timestamp(millisecondsSinceEpoch: 1000)
    #expect((t + .seconds(10)).millisecondsSinceEpoch == 11_000)
    #expect((t + .seconds(10)) - t == .seconds(10))
    #expect(Duration.milliseconds(1500).milliseconds == 1500)
}

/// One conversion from wall-clock time, rounded down: the API's and the controller's `now` used to round
/// differently (to nearest and down), so the same instant could be 1 ms apart.
@Test(arguments: [
    (0.0, Int64(0)),
    (1.9999, Int64(1_999)),
    (1_795_000_000.1239, Int64(1_795_000_000_123)),
    (1_795_000_000.9996, Int64(1_795_000_000_999)),
])
func fromDateRoundsDown(seconds: Double, expected: Int64) {
    #expect(Timestamp(Date(timeIntervalSince1970: seconds)).millisecondsSinceEpoch == expected)
}
