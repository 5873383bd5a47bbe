import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import SluiceCore
import class SluiceHTTP.OTLPExporter
import Tracing

/// The request context of the API: the body limit is 1 MiB.
public struct APIContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public init(source: ApplicationRequestContextSource) { coreContext = .init(source: source) }
    public var maxUploadSize: Int { APIServer.maxBodyBytes }
}

/// The control API: routes, auth, errors. Built once and served by `sluice serve` and by the tests.
public struct APIServer: Sendable {
    /// Larger bodies are answered with 413.
    public static let maxBodyBytes = 1 << 20

    public let backend: any SluiceBackend
    public let authenticator: Authenticator
    public let signal: EventSignal
    public let metrics: APIMetrics
    public let logger: Logger
    /// Wall-clock time, for the hold left in a stage.
    public let now: @Sendable () -> Timestamp
    /// The dashboard's signed-in browsers: the cookie is a second way to authenticate, beside bearer tokens.
    public let sessions: SessionStore
    /// Session cookies are marked `Secure`: the API is served over TLS.
    public let secureCookies: Bool
    /// Starts a span per request, continuing the caller's W3C `traceparent`; nil: request ids only.
    public let tracer: (any Tracer)?
    /// The span exporter whose counts `/metrics` shows; nil: spans are not exported.
    public let spanExporter: OTLPExporter?

    public init(
        backend: any SluiceBackend, authenticator: Authenticator, signal: EventSignal, metrics: APIMetrics = APIMetrics(),
        logger: Logger, now: @escaping @Sendable () -> Timestamp = APIServer.systemNow,
        sessions: SessionStore? = nil, secureCookies: Bool = false, tracer: (any Tracer)? = nil,
        spanExporter: OTLPExporter? = nil
    ) {
        self.tracer = tracer
        self.spanExporter = spanExporter
        self.backend = backend
        self.authenticator = authenticator
        self.signal = signal
        self.metrics = metrics
        self.logger = logger
        self.now = now
        self.sessions = sessions ?? SessionStore(now: now)
        self.secureCookies = secureCookies
    }

    /// The system clock as a `Timestamp`.
    public static let systemNow: @Sendable () -> Timestamp = {
        Timestamp(Date())
    }

    /// Every route of docs/api.md behind the JSON error middleware.
    public func buildRouter() -> Router<APIContext> {
        let router = Router(context: APIContext.self)
        // First, so that every answer (the dashboard's and errors too) carries the request id and every log line of
        // the request has it.
        router.add(middleware: RequestContextMiddleware(tracer: tracer))
        // So the dashboard's error answers get its headers too.
        router.add(middleware: DashboardHeadersMiddleware())
        router.add(middleware: ErrorMiddleware(logger: logger))
        router.add(middleware: ControlCharacterMiddleware())
        addHealthRoutes(to: router)
        addDashboardRoutes(to: router)
        addSessionRoutes(to: router)
        addStrategyRoutes(to: router)
        addRolloutRoutes(to: router)
        addSampleRoutes(to: router)
        addEventRoutes(to: router)
        addMethodNotAllowedRoutes(to: router)
        return router
    }

    /// The methods answered with 405 (and `Allow`) on a path that has routes for other methods. Any other
    /// method is one this server does not know: 404 as before.
    static let knownMethods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]

    /// For every routed path, each known method it has no route for answers 405 with `Allow` listing the ones
    /// it has. Added after every other route, from the router's own list, so it cannot drift from them.
    func addMethodNotAllowedRoutes(to router: Router<APIContext>) {
        var methodsByPath: [String: (path: RouterPath, methods: [HTTPRequest.Method])] = [:]
        for route in router.routes {
            methodsByPath[route.path.description, default: (route.path, [])].methods.append(route.method)
        }
        for (path, methods) in methodsByPath.values {
            let allow = methods.map(\.rawValue).sorted().joined(separator: ", ")
            for method in Self.knownMethods where !methods.contains(method) {
                router.on(path, method: method) { request, _ in
                    var response = Self.errorResponse(
                        APIError(.methodNotAllowed, "\(request.method) is not allowed on \(request.uri.path); allowed: \(allow)"))
                    response.headers[.allow] = allow
                    return response
                }
            }
        }
    }

    /// The application on `host:port`, with TLS when `tls` is given. A connection without a complete request
    /// header for `idleTimeout` is closed; beyond `maxConnections` open ones, new connections wait in the listen
    /// backlog. `onServerRunning` receives the bound port (useful with port 0).
    public func buildApplication(
        host: String, port: Int, tls: ServerConfig.TLS? = nil, idleTimeout: Duration = ServerConfig.defaultIdleTimeout,
        maxConnections: Int = ServerConfig.defaultMaxConnections, services: [any Service] = [],
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: TimeAmount(idleTimeout)))
        let server: HTTPServerBuilder
        if let tls {
            server = try .tls(http1, tlsConfiguration: Self.tlsConfiguration(tls))
        } else {
            server = http1
        }
        var app = Application(
            router: buildRouter(),
            server: server,
            configuration: .init(
                address: .hostname(host, port: port), serverName: "sluice",
                availableConnectionsDelegate: ConnectionLimit(limit: maxConnections, metrics: metrics)),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
        app.addServices(services)
        return app
    }

    /// TLS 1.2 as the minimum (1.3 preferred); the TLS 1.2 cipher suites of `tls12CipherSuites`.
    static func tlsConfiguration(_ tls: ServerConfig.TLS) throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(tls.certificateFile)
            key = try NIOSSLPrivateKey(file: tls.keyFile, format: .pem)
        } catch {
            throw ConfigError(
                file: tls.certificateFile, message: "cannot load the TLS certificate or key (\(tls.keyFile)): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuites = tls12CipherSuites.joined(separator: ":")
        return configuration
    }

    /// TLS 1.2 suites: forward secret (ECDHE) and authenticated encryption (GCM, ChaCha20-Poly1305) only,
    /// Mozilla's "intermediate" profile without DHE. TLS 1.3's three suites are always on (BoringSSL fixes them).
    static let tls12CipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ]

    // MARK: Auth

    /// Checks the request's token for `role` (or, without an Authorization header, its dashboard session cookie);
    /// refusals are counted and logged without the token.
    func authorize(_ request: Request, role: Role) async throws -> Identity {
        let header = request.headers[.authorization]
        if header == nil, let cookie = Self.sessionCookie(request) {
            return try await authorizeSession(cookie, request: request, role: role)
        }
        switch await authenticator.authenticate(authorization: header, role: role) {
        case .success(let identity):
            return identity
        case .failure(let failure):
            metrics.recordAuthFailure(failure)
            var metadata: Logger.Metadata = [
                "http.method": "\(request.method)", "http.path": "\(request.uri.path)",
                "auth.failure": "\(failure.rawValue)", "auth.role_needed": "\(role)",
            ]
            if failure == .forbidden, let name = authenticator.tokenName(authorization: header) {
                metadata["auth.token_name"] = "\(name)"
            }
            logger.warning("API request refused", metadata: metadata)
            switch failure {
            case .missing:
                throw APIError(.unauthenticated, "a bearer token is required (Authorization: Bearer TOKEN)")
            case .unknown:
                throw APIError(.unauthenticated, "the token is not known to this server")
            case .forbidden:
                throw APIError(.forbidden, "this route needs the \(role) role")
            }
        }
    }

    /// Adds a route that needs `role`; the handler gets the caller's identity.
    func route(
        _ router: Router<APIContext>, _ method: HTTPRequest.Method, _ path: RouterPath, role: Role,
        _ handler: @escaping @Sendable (Request, APIContext, Identity) async throws -> Response
    ) {
        router.on(path, method: method) { request, context in
            let identity = try await authorize(request, role: role)
            return try await handler(request, context, identity)
        }
    }

    // MARK: Bodies

    /// The request body, at most 1 MiB (413 beyond).
    static func body(of request: Request) async throws -> ByteBuffer {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            throw APIError(.tooLarge, "the body is \(length) bytes; at most \(maxBodyBytes) are accepted")
        }
        do {
            return try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError(.tooLarge, "the body is larger than \(maxBodyBytes) bytes")
        }
    }

    /// Decodes a JSON body; a malformed one is 400 with what was wrong.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, allowEmpty: Bool = false) async throws -> T? {
        let buffer = try await body(of: request)
        if buffer.readableBytes == 0 {
            if allowEmpty { return nil }
            throw APIError(.badRequest, "a JSON body is required")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: buffer))
        } catch let error as DecodingError {
            throw APIError(.badRequest, "malformed JSON body: \(describe(error))")
        } catch {
            throw APIError(.badRequest, "malformed JSON body: \(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.isEmpty ? "the body" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing `\(path(context.codingPath + [key]))`"
        case .typeMismatch(let type, let context): return "`\(path(context.codingPath))` must be \(type)"
        case .valueNotFound(let type, let context): return "`\(path(context.codingPath))` must be \(type), not null"
        case .dataCorrupted(let context): return "not valid JSON at \(path(context.codingPath))"
        @unknown default: return "\(error)"
        }
    }

    /// A JSON response with sorted keys.
    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
        data.append(0x0A)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The JSON error body for `error`.
    static func errorResponse(_ error: APIError) -> Response {
        (try? json(ErrorBody(error), status: .init(code: error.status)))
            ?? Response(status: .init(code: error.status))
    }
}

/// Turns every error into the JSON error body with a fitting status; unexpected ones are logged.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = APIContext
    let logger: Logger

    func handle(
        _ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return APIServer.errorResponse(error)
        } catch let error as NIOTooManyBytesError {
            _ = error
            return APIServer.errorResponse(APIError(.tooLarge, "the body is larger than \(APIServer.maxBodyBytes) bytes"))
        } catch let error as HTTPError {
            let code: APIError.Code =
                switch error.status.code {
                case 404: .notFound
                case 405: .methodNotAllowed
                case 413: .tooLarge
                case 400: .badRequest
                default: .internal
                }
            let message = code == .notFound ? "no route \(request.method) \(request.uri.path)" : error.body ?? "\(error.status)"
            return APIServer.errorResponse(APIError(code, message))
        } catch {
            logger.error("API request failed", metadata: ["http.path": "\(request.uri.path)", "error": "\(error)"])
            return APIServer.errorResponse(APIError(.internal, "internal error: \(error)"))
        }
    }
}
