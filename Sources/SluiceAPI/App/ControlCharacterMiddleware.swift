import Foundation
import Hummingbird
import HummingbirdCore

/// Answers 400 to a request whose path or query holds a control character once percent-decoded.
///
/// No path segment or query parameter of the API can hold one (ids, names, seqs, phases, cursors), and a
/// NUL would be cut off where the value reaches SQLite: `?rollout=r-1%00junk` would read as `r-1`.
struct ControlCharacterMiddleware: RouterMiddleware {
    typealias Context = APIContext

    func handle(
        _ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response
    ) async throws -> Response {
        if let problem = Self.problem(in: request.uri) {
            throw APIError(.badRequest, problem)
        }
        return try await next(request, context)
    }

    /// What is wrong with `uri`'s path segments, query names and values, or nil when none holds a control
    /// character (Unicode category Cc: U+0000...U+001F, U+007F...U+009F) once percent-decoded.
    static func problem(in uri: URI) -> String? {
        for (index, segment) in uri.path.split(separator: "/").enumerated() {
            if let found = control(in: segment) {
                return "path segment \(index + 1) holds the control character \(found); the API's paths never do"
            }
        }
        for part in (uri.query ?? "").split(separator: "&") {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decoded(pair[0])
            if let found = control(in: pair[0]) {
                return "a query parameter's name holds the control character \(found)"
            }
            if pair.count == 2, let found = control(in: pair[1]) {
                return "query parameter `\(name)` holds the control character \(found); the API's parameters never do"
            }
        }
        return nil
    }

    private static func decoded(_ text: Substring) -> String {
        let plain = text.replacingOccurrences(of: "+", with: " ")
        return plain.removingPercentEncoding ?? plain
    }

    /// The first control character of `text` percent-decoded, as `U+0000 at offset N` (offset in characters).
    private static func control(in text: Substring) -> String? {
        for (offset, scalar) in decoded(text).unicodeScalars.enumerated() where scalar.properties.generalCategory == .control {
            return "U+" + String(format: "%04X", scalar.value) + " at offset \(offset)"
        }
        return nil
    }
}
