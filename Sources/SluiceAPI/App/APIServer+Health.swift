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
        // A bad tokens file does not make the server unready (the last good list still serves, and taking every
        // replica out of rotation would lock everyone out); it shows in the detail for a probe or a human to see.
        router.get("/readyz") { _, _ in
            if let reason = await backend.unreadyReason() { throw APIError(.unavailable, "not ready: \(reason)") }
            return try Self.json(Readiness(status: "ready", tokensFile: .init(authenticator.reloadStatus())))
        }
        // While not ready (the store may not answer) the store is not read: the rollouts' series are left out (not
        // reported as none) and the rest is served at once, `sluice_ready` 0 being what an alert needs to see then.
        router.get("/metrics") { _, _ in
            let ready = await backend.unreadyReason() == nil
            var summary: RolloutSummary?
            var strategies: [String: Strategy] = [:]
            if ready {
                summary = try await backend.rolloutSummary()
                for stored in try await backend.strategies() { strategies[stored.strategy.key.description] = stored.strategy }
            }
            var text = PrometheusText.render(
                rollouts: summary, strategies: strategies, runtime: await backend.runtimeMetrics(), api: metrics,
                tokens: authenticator.reloadStatus(), ready: ready, now: now())
            if let spanExporter { text += PrometheusText.spanExport(spanExporter.counts) }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}

/// The `/readyz` body: `{"status": "ready", "tokensFile": {...}}`.
struct Readiness: Encodable {
    /// Whether the list of tokens in use is the tokens file on disk.
    struct TokensFile: Encodable {
        /// `current`, or `stale` while the file on disk is invalid and the last good list is in use.
        var status: String
        /// Why the file on disk is not in use: `file:line:col: message`.
        var error: String?
        /// Since when (RFC 3339), while stale.
        var since: String?
        /// Reloads that failed since the start.
        var failedReloads: Int
        /// Tokens in the list in use.
        var tokens: Int

        init(_ reload: Authenticator.ReloadStatus) {
            status = reload.error == nil ? "current" : "stale"
            error = reload.error?.description
            since = reload.failingSince.map(\.rfc3339)
            failedReloads = reload.failures
            tokens = reload.tokens
        }
    }

    var status: String
    var tokensFile: TokensFile
}
