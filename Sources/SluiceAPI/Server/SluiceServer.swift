import Foundation
import Logging
import ServiceLifecycle
import SluiceController
import SluiceCore
import SluiceHTTP
import SluiceKubernetes
import SluiceProviders
import SluiceStore
import Tracing
import UnixSignals

/// `sluice serve`'s composition root: every part of the server, built from one config in the order it depends on,
/// top to bottom, and the service group that runs them. `sluice serve` (Sources/sluice/Serve.swift) only loads the
/// config, bootstraps logging and runs the group.
public enum SluiceServer {
    /// Builds every part from `config` and returns the service group that runs them (the reconciler beside the API;
    /// SIGTERM/SIGINT stop the API first, then the controller, then the store).
    public static func make(
        config: ServerConfig, logger: Logger, gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint],
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> ServiceGroup {
        // The process: as many open files as allowed (API connections, the store, outbound connections).
        let openFiles = OpenFileLimit.raiseToHardLimit()
        logger.info(
            "open-file limit", metadata: ["open_files.before": "\(openFiles.before)", "open_files.limit": "\(openFiles.after)"])

        // Who may call the API (tokens, and OIDC issuers' JWTs): checked first, so a broken tokens file stops the start
        // before anything is opened.
        let oidc = config.oidc.isEmpty ? nil : OIDCVerifier(issuers: config.oidc, http: try CurlClient())
        let authenticator = try Authenticator(tokensFile: config.tokensFile, logger: logger, oidc: oidc)

        // The store: rollouts, strategies and the event log. PostgreSQL when `database` is set (docs/ha.md), else the
        // SQLite file, held by this process alone.
        // On PostgreSQL, this replica leases shards of rollouts and every write for a rollout is fenced by its lease.
        var postgres: PostgresStore?
        var leases: LeaseView?
        if let database = config.database {
            let view = LeaseView(replica: ShardOwnership.newReplicaID())
            logger.info("replica id", metadata: ["replica.id": "\(view.replica)"])
            postgres = try await PostgresStore.open(database, leases: view, logger: logger)
            leases = view
        }
        let store: any RolloutStore
        if let postgres { store = postgres } else { store = try Store(path: config.statePath, exclusive: true) }

        // Trace context: every request's span continues its caller's W3C traceparent; commands store it with their
        // events, and the ticks and effects that carry them out continue it on every outbound call (docs/operations.md).
        // `traceContext: false` turns it off: no span, no header, nothing stored but request ids. With `otlp`, the
        // spans are recorded and exported; the exporter's own client propagates nothing, so an export starts no span.
        var exporter: OTLPExporter?
        if let otlp = config.otlp {
            exporter = try spanExporter(otlp, logger: logger)
        }
        let tracer = config.traceContext ? W3CTracer(sink: exporter) : nil

        // The outside world: one HTTP client for everything, the Kubernetes cluster if there is one.
        let http = try CurlClient(instrument: tracer)
        let kubernetes = try cluster(config, logger: logger).map { KubernetesClient(config: $0, http: http) }

        // Routers, metric providers and workloads, built per rollout from its strategy; their calls counted.
        let providerMetrics = ProviderMetrics()
        let routerMetrics = RouterMetrics()
        let providers = LiveProviderFactory(
            metrics: MetricProviderRegistry(client: http, metrics: providerMetrics), routerMetrics: routerMetrics,
            http: http, kubernetes: kubernetes)

        // The reconciler, and the strategies of `strategiesDir` applied before it runs.
        var ownership: ShardOwnership?
        if let postgres, let leases {
            ownership = ShardOwnership(
                store: postgres, view: leases, clock: SystemClock(), options: config.leases, logger: logger)
        }
        let controller = Controller(
            store: store, providers: providers, http: http, logger: logger, tracer: tracer,
            ownership: ownership, commands: postgres)
        if let directory = config.strategiesDir {
            try await applyDirectory(directory, to: store, logger: logger)
        }

        // The API over the controller and the store; SSE followers wake from the committed event log.
        let signal = EventSignal()
        signal.advance(to: try await store.lastSeq())
        let backend = ControllerBackend(
            store: store, controller: controller, signal: signal, providerMetrics: providerMetrics,
            routerMetrics: routerMetrics, logger: logger)
        let api = APIServer(
            backend: backend, authenticator: authenticator, signal: signal, logger: logger,
            sessions: SessionStore(store: store), secureCookies: config.tls != nil, tracer: tracer,
            spanExporter: exporter)
        let app = try api.buildApplication(
            host: config.host, port: config.port, tls: config.tls, idleTimeout: config.idleTimeout,
            maxConnections: connectionLimit(config, openFiles: openFiles.after, logger: logger),
            onServerRunning: onServerRunning)

        // The services, started in this order and stopped in the reverse one.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let postgres {
            // First of all, so that it stops last, after everything that writes.
            services.append(.init(service: postgres))
        }
        if let exporter {
            // Before everything that makes spans, so it stops after them and sends their last spans.
            services.append(.init(service: SpanExportService(exporter: exporter)))
        }
        if let kubernetes {
            // Before the controller, so it stops after it: events the controller commits while stopping still go out.
            let sink = EventMirrorSink(mirror: EventMirror(client: kubernetes), logger: logger)
            services.append(
                .init(service: EventMirrorService(store: store, sink: sink, logger: logger, leads: { controller.leads })))
        }
        services += [
            .init(service: controller), .init(service: backend), .init(service: app), .init(service: MemoryTrimService()),
        ]
        if let keep = config.sampleRetention {
            services.append(.init(service: SampleRetention(store: store, keep: keep, clock: SystemClock(), logger: logger)))
        }
        return ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: gracefulShutdownSignals, logger: logger))
    }
    /// The exporter of `otlp`, logging when exports start failing and when they work again (not every batch).
    static func spanExporter(_ otlp: ServerConfig.OTLP, logger: Logger) throws -> OTLPExporter {
        let options = OTLPExporter.Options(
            endpoint: otlp.tracesURL, tls: TLSOptions(ca: otlp.caFile.map { .file($0) }),
            resource: [("service.name", otlp.serviceName), ("service.version", SluiceVersion.current)],
            version: SluiceVersion.current)
        let endpoint = otlp.tracesURL
        logger.info("exporting spans (OTLP/HTTP)", metadata: ["otlp.endpoint": "\(endpoint)"])
        return OTLPExporter(options: options, http: try CurlClient()) { failure in
            if let failure {
                logger.warning(
                    "span export failing: spans are dropped until the collector takes them again",
                    metadata: ["otlp.endpoint": "\(endpoint)", "error": "\(failure)"])
            } else {
                logger.info("span export working again", metadata: ["otlp.endpoint": "\(endpoint)"])
            }
        }
    }

    /// Files the server keeps open besides API connections: the store, the Kubernetes and provider
    /// connections, logs.
    static let reservedFiles = 256

    /// `config.maxConnections`, lowered to what the open-file limit leaves after `reservedFiles` (a connection
    /// accepted past it would fail, and with it every file the server opens), with a warning when lowered.
    static func connectionLimit(_ config: ServerConfig, openFiles: Int, logger: Logger) -> Int {
        let fits = max(openFiles - reservedFiles, 1)
        guard config.maxConnections > fits else { return config.maxConnections }
        logger.warning(
            "maxConnections lowered to fit the open-file limit; raise the hard limit (ulimit -Hn, LimitNOFILE=) for more",
            metadata: [
                "maxConnections.configured": "\(config.maxConnections)", "maxConnections": "\(fits)",
                "open_files.limit": "\(openFiles)",
            ])
        return fits
    }

    /// The cluster from the config's kubeconfig (and context), else the pod's service account, else none.
    static func cluster(_ config: ServerConfig, logger: Logger) throws -> ClusterConfig? {
        if let kubeconfig = config.kubeconfig {
            return try ClusterConfig.fromKubeconfig(paths: [kubeconfig], context: config.context)
        }
        if ProcessInfo.processInfo.environment["KUBERNETES_SERVICE_HOST"] != nil {
            return try ClusterConfig.inCluster()
        }
        logger.info("no Kubernetes cluster configured: Deployment targets and Kubernetes routers will fail on use")
        return nil
    }

    /// Applies every strategy file of `directory` (*.yaml, *.yml); any invalid one stops the start with
    /// every error, compiler-style.
    public static func applyDirectory(_ directory: String, to store: any RolloutStore, logger: Logger) async throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        var strategies: [(Strategy, String, String)] = []
        var errors: [String] = []
        for name in names {
            let path = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else {
                errors.append("\(path): cannot read")
                continue
            }
            let source = String(decoding: data, as: UTF8.self)
            let result = StrategyLoader.load(yaml: source, file: path)
            errors += result.errors.map(\.description)
            if result.errors.isEmpty { strategies += result.strategies.map { ($0, source, path) } }
        }
        guard errors.isEmpty else {
            throw ConfigError(file: directory, message: "invalid strategies:\n" + errors.joined(separator: "\n"))
        }
        for (strategy, source, path) in strategies {
            let (stored, outcome) = try await store.putStrategy(strategy, source: source, now: APIServer.systemNow())
            logger.info(
                "strategy applied at start",
                metadata: [
                    "strategy.name": "\(strategy.key)", "strategy.revision": "\(stored.revision)", "file": "\(path)",
                    "outcome": "\(outcome)",
                ])
        }
    }
}
