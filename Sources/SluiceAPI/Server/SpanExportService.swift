import ServiceLifecycle
import SluiceHTTP

/// Runs the span exporter beside the server; on shutdown it sends what is still queued, once, and stops.
struct SpanExportService: Service {
    let exporter: OTLPExporter

    func run() async throws {
        await cancelWhenGracefulShutdown { await exporter.run() }
        await exporter.flush()
    }
}
