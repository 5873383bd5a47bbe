import Prometheus
import SluiceHTTP

extension PrometheusText {
    /// The span exporter's series (only when `otlp` is set): what a collector took and what was dropped, and why.
    static func spanExport(_ counts: OTLPExporter.Counts) -> String {
        let out = PrometheusCollectorRegistry()
        out.counter("sluice_trace_spans_exported_total", [], "Spans an OTLP collector took.", counts.exported)
        let dropped =
            "Spans not exported, by reason: queue_full (the collector is slower than Sluice makes spans, or down), "
            + "export_failed (refused or not answered after every attempt)."
        out.counter("sluice_trace_spans_dropped_total", [("reason", "queue_full")], dropped, counts.droppedQueueFull)
        out.counter("sluice_trace_spans_dropped_total", [("reason", "export_failed")], dropped, counts.droppedExportFailed)
        out.gauge("sluice_trace_spans_queued", [], "Spans waiting to be exported.", Double(counts.queued))
        return out.emitToString()
    }
}
