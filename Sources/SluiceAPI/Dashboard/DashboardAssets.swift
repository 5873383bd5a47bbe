import NIOCore

/// The dashboard's files (Sources/SluiceAPI/Dashboard/ui), compiled into the binary by SwiftPM's `embedInCode`:
/// the pages need nothing outside the `sluice` binary, and a person edits plain HTML, CSS, JS and SVG files.
enum DashboardAssets {
    /// One file: its bytes and media type.
    struct Asset: Sendable {
        var bytes: [UInt8]
        var contentType: String
    }

    /// The files by the name they are served under, `/ui/NAME`.
    static let files: [String: Asset] = [
        "index.html": Asset(bytes: PackageResources.index_html, contentType: "text/html; charset=utf-8"),
        "app.css": Asset(bytes: PackageResources.app_css, contentType: "text/css; charset=utf-8"),
        "app.js": Asset(bytes: PackageResources.app_js, contentType: "text/javascript; charset=utf-8"),
        "icon.svg": Asset(bytes: PackageResources.icon_svg, contentType: "image/svg+xml"),
    ]

    /// The bytes a browser loads for the dashboard: every file once.
    static var totalBytes: Int { files.values.reduce(0) { $0 + $1.bytes.count } }
}
