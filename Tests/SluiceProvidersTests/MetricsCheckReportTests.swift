import Foundation
import SluiceCore
import Testing

@testable import SluiceProviders

/// What `sluice check` prints.
@Suite struct MetricsCheckReportTests {
    static let results = [
        CheckResult(
            check: "error-rate", provider: "prom",
            query: "sum(rate(http_requests_total{app=\"checkout\",track=\"canary\",code=~\"5..\"}[1m]))\n  / sum(x)",
            value: 0.0123456789, max: 0.01, min: nil, verdict: .breach, reason: nil, latencySeconds: 0.004),
        CheckResult(
            check: "availability", provider: "prom", query: "avail", value: nil, max: nil, min: 0.999,
            verdict: .noData, reason: "the query returned NaN", latencySeconds: 0.002),
        CheckResult(
            check: "p99", provider: "prom", query: "p99", value: 0.0249, max: 0.2, min: nil, verdict: .pass,
            reason: nil, latencySeconds: 0.003),
    ]

    @Test func tableHasOneAlignedRowPerCheckAndSaysWhyForEachFailure() {
        let lines = CheckReport.table(Self.results).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "CHECK         QUERY" + String(repeating: " ", count: 57) + "VALUE      THRESHOLD  VERDICT")
        let query = #"sum(rate(http_requests_total{app="checkout",track="canary",…"#
        #expect(lines[1].hasPrefix("error-rate    " + query + "  "))
        #expect(lines[1].hasSuffix("0.0123457  <= 0.01    breach"))
        #expect(lines[2].hasSuffix("-          >= 0.999   no-data"))
        #expect(lines[3].hasSuffix("0.0249     <= 0.2     pass"))
        #expect(lines[4] == "")
        #expect(lines[5] == "error-rate: breach: 0.0123457 is not <= 0.01")
        #expect(lines[6] == "availability: no data: the query returned NaN")
    }

    @Test func jsonIsAnArrayWithEveryKey() throws {
        let data = Data(try CheckReport.json(Self.results).utf8)
        let array = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        #expect(array.count == 3)
        #expect(array[0]["threshold"] as? String == "<= 0.01")
        #expect(array[0]["verdict"] as? String == "breach")
        #expect(array[1]["value"] is NSNull)
        #expect(array[1]["reason"] as? String == "the query returned NaN")
        #expect((array[0]["query"] as? String)?.contains("\n  / sum(x)") == true)
    }
}
