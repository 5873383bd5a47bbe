import SluiceDemo
import Testing

struct DemoMetricsTests {
    /// The demo app exports its 200 and 500 series at 0 before any request, so that `rate()` and `increase()`
    /// count a version's first error (a series born at 1 hides it: the scenario suite's 2 % canary was caught one
    /// error late).
    @Test func theAnswerCodesAreExportedAtZeroBeforeTheFirstRequest() {
        let text = DemoMetrics(app: "demo", version: "v2").render()
        #expect(text.contains(#"http_requests_total{app="demo",version="v2",code="500"} 0"#), "\(text)")
        #expect(text.contains(#"http_requests_total{app="demo",version="v2",code="200"} 0"#), "\(text)")
        #expect(text.contains(#"http_request_duration_seconds_count{app="demo",version="v2",code="500"} 0"#), "\(text)")
    }

    /// A request still counts under its code, beside the other code's 0.
    @Test func aFailedRequestCountsUnderItsCode() {
        let metrics = DemoMetrics(app: "demo", version: "v2")
        metrics.record(code: 500, seconds: 0.3)
        let text = metrics.render()
        #expect(text.contains(#"http_requests_total{app="demo",version="v2",code="500"} 1"#), "\(text)")
        #expect(text.contains(#"http_requests_total{app="demo",version="v2",code="200"} 0"#), "\(text)")
        #expect(text.contains(#"http_request_duration_seconds_bucket{app="demo",version="v2",code="500",le="0.25"} 0"#))
    }
}
