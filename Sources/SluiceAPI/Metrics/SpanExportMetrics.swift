import SluiceHTTP

extension PrometheusText {
    /// The span exporter's series (only when `otlp` is set): what a collector took and what was dropped, and why.
    static func spanExport(_ counts: OTLPExporter.Counts) -> String {
        var out = PrometheusText()
        out.header("sluice_trace_spans_exported_total", "counter", "Spans an OTLP collector took.")
        out.sample("sluice_trace_spans_exported_total", [:], Double(counts.exported))
        out.header(
            "sluice_trace_spans_dropped_total", "counter",
            "Spans not exported, by reason: queue_full (the collector is slower than Sluice makes spans, or down), "
                + "export_failed (refused or not answered after every attempt).")
        out.sample("sluice_trace_spans_dropped_total", ["reason": "queue_full"], Double(counts.droppedQueueFull))
        out.sample("sluice_trace_spans_dropped_total", ["reason": "export_failed"], Double(counts.droppedExportFailed))
        out.header("sluice_trace_spans_queued", "gauge", "Spans waiting to be exported.")
        out.sample("sluice_trace_spans_queued", [:], Double(counts.queued))
        return out.text
    }
}
