import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The demo service: answers `GET /` with its version (body and `X-Demo-Version` header), fails and
/// slows down as its `DemoBehaviour` says, and serves Prometheus metrics at `GET /metrics`.
/// `GET/POST /control` read and change the error rate and latency at run time.
public struct DemoApp: Sendable {
    /// The response header that carries the version that answered.
    public static let versionHeader = "X-Demo-Version"

    public let app: String
    public let version: String
    public let behaviour: DemoBehaviour
    public let metrics: DemoMetrics

    public init(app: String, version: String, behaviour: DemoBehaviour) {
        self.app = app
        self.version = version
        self.behaviour = behaviour
        metrics = DemoMetrics(app: app, version: version)
    }

    /// The routes, shared by the executable and the tests.
    public func buildRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let versionField = HTTPField.Name(Self.versionHeader)!
        let (app, version, behaviour, metrics) = (self.app, self.version, self.behaviour, self.metrics)
        router.get("/") { _, _ -> Response in
            let started = ContinuousClock.now
            let (fail, latencyMs) = behaviour.next()
            if latencyMs > 0 { try await Task.sleep(for: .milliseconds(latencyMs)) }  // the injected latency
            let status: HTTPResponse.Status = fail ? .internalServerError : .ok
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; charset=utf-8"
            headers[versionField] = version
            let body = fail ? "\(app) \(version): injected failure\n" : "\(app) \(version)\n"
            let elapsed = ContinuousClock.now - started
            metrics.record(code: status.code, seconds: Double(elapsed.components.attoseconds) / 1e18
                + Double(elapsed.components.seconds))
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        router.get("/control") { _, _ -> Response in
            try Self.json(behaviour.current)
        }
        router.post("/control") { request, context -> Response in
            let change: DemoBehaviour.Change
            do {
                change = try await request.decode(as: DemoBehaviour.Change.self, context: context)
            } catch {
                throw HTTPError(.badRequest, message: "body must be JSON {\"errorRate\": 0..1, \"latencyMs\": N}")
            }
            do { try behaviour.apply(change) } catch { throw HTTPError(.badRequest, message: "\(error)") }
            return try Self.json(behaviour.current)
        }
        return router
    }

    static func json(_ value: DemoBehaviour.Change) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let data = try JSONEncoder().encode(value)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The application on 127.0.0.1:`port` (or `host`); runs until SIGTERM or SIGINT, then exits cleanly.
    public func buildApplication(host: String = "127.0.0.1", port: Int, logger: Logger) -> some ApplicationProtocol {
        Application(
            router: buildRouter(),
            configuration: .init(address: .hostname(host, port: port), serverName: "sluice-demo-app"),
            logger: logger
        )
    }
}
