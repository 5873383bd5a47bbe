import Hummingbird
import NIOCore
import SluiceCore

extension APIServer {
    /// `/healthz`, `/readyz`, `/version` and `/metrics`: no token needed.
    func addHealthRoutes(to router: Router<APIContext>) {
        router.get("/healthz") { _, _ in
            try Self.json(["status": "ok", "version": SluiceVersion.current])
        }
        router.get("/version") { _, _ in
            try Self.json(["version": SluiceVersion.current])
        }
        router.get("/readyz") { _, _ in
            guard await backend.isReady() else {
                throw APIError(.unavailable, "not ready: the store is not open or the reconciler is not running")
            }
            return try Self.json(["status": "ready"])
        }
        router.get("/metrics") { _, _ in
            let summary = try await backend.rolloutSummary()
            var strategies: [String: Strategy] = [:]
            for stored in try await backend.strategies() { strategies[stored.strategy.key.description] = stored.strategy }
            let text = PrometheusText.render(
                rollouts: summary, strategies: strategies, runtime: await backend.runtimeMetrics(), api: metrics)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}
