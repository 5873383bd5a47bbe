/// The one place that decides what of a secret-bearing value may leave the process: log lines, events,
/// error messages and what a `viewer` token is shown. A URL loses its user info (`user:pass@`), its query and
/// its fragment everywhere; a webhook's URL also loses its path, which is often the secret itself (Slack's
/// `/services/T…/B…/xxx`). docs/runtime.md ("Secrets") describes the rule.
public enum Redaction {
    /// What is shown in place of a hidden value, e.g. a header's value.
    public static let hidden = "<redacted>"

    /// How much of a URL may be shown.
    public enum URLPart: Sendable, Hashable {
        /// `scheme://host:port/path`: provider addresses, admin and API URLs, whose paths name an endpoint.
        case path
        /// `scheme://host:port`: webhooks, whose paths may be a secret.
        case origin
    }

    /// `url` without user info, query and fragment, and without the path when `keeping` is `.origin`.
    /// Works on the text alone, so a URL Foundation cannot parse (one holding `{{query}}`) is redacted too.
    public static func url(_ url: String, keeping: URLPart = .path) -> String {
        // On the bytes of an ASCII URL (~26 k instructions by Character, and a provider's URL is redacted each
        // tick); by Character otherwise, with the same answer.
        let bytes = Array(url.utf8)
        guard ASCIIBytes.all(bytes) else { return characterURL(url, keeping: keeping) }
        let parts = ASCIIBytes.urlAuthority(bytes)
        var end = parts.end
        if keeping == .path {
            while end < bytes.count, bytes[end] != UInt8(ascii: "?"), bytes[end] != UInt8(ascii: "#") { end += 1 }
        }
        return String(decoding: bytes[..<(parts.schemeEnd ?? 0)] + bytes[parts.hostStart..<end], as: UTF8.self)
    }

    /// `url(_:keeping:)` by Character, for a URL that is not ASCII.
    package static func characterURL(_ url: String, keeping: URLPart) -> String {
        // The standard library's search, not Foundation's `range(of:)` (which bridged to a CFString, ~20 k
        // instructions a URL, and providers are built every tick).
        let scheme = url.firstRange(of: "://").map { url[..<$0.upperBound] } ?? ""
        let rest = url[scheme.endIndex...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let host = authority.lastIndex(of: "@").map { authority[authority.index(after: $0)...] } ?? authority
        guard keeping == .path else { return String(scheme + host) }
        let tail = rest[authorityEnd...]
        let path = tail[..<(tail.firstIndex { $0 == "?" || $0 == "#" } ?? tail.endIndex)]
        return String(scheme + host + path)
    }
}
