import Hummingbird
import NIOCore
import SluiceCore

extension APIServer {
    /// `GET /` redirects to `/ui/`; `GET /ui/` (and `/ui`) is the dashboard's page, `GET /ui/{file}` its files.
    /// No token is needed for these: they hold no data, and the page signs in through `/v1/session`.
    func addDashboardRoutes(to router: Router<APIContext>) {
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/ui/"]) }
        // The router reads `/ui/` and `/ui` as one path: both are the page.
        router.get("/ui") { _, _ in try Self.dashboardFile("index.html") }
        router.get("/ui/:file") { _, context in
            try Self.dashboardFile(context.parameters.get("file") ?? "")
        }
    }

    static func dashboardFile(_ name: String) throws -> Response {
        guard let asset = DashboardAssets.files[name] else { throw APIError(.notFound, "no dashboard file \(name)") }
        return Response(
            status: .ok, headers: [.contentType: asset.contentType, .cacheControl: "no-cache"],
            body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }
}

/// Every answer under `/ui` (and the redirect at `/`) carries a strict Content-Security-Policy: scripts, styles,
/// images and connections from this server only, no inline script or style, no framing; and `nosniff`, so no
/// answer is read as another type than it says.
struct DashboardHeadersMiddleware: RouterMiddleware {
    typealias Context = APIContext

    static let contentSecurityPolicy = [
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
        "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ].joined(separator: "; ")

    func handle(
        _ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response
    ) async throws -> Response {
        var response = try await next(request, context)
        let path = request.uri.path
        if path == "/" || path == "/ui" || path.hasPrefix("/ui/") {
            response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
            response.headers[.xContentTypeOptions] = "nosniff"
            response.headers[.init("Referrer-Policy")!] = "no-referrer"
            response.headers[.init("X-Frame-Options")!] = "DENY"
        }
        return response
    }
}
