import Foundation
import SluiceHTTP

/// Debian's headless Chromium driven by its chromedriver over the W3C WebDriver protocol, which is JSON over HTTP:
/// the tests speak it with SluiceHTTP's client, no WebDriver library needed.
public final class Browser: Sendable {
    public let driver: ManagedProcess
    /// `http://127.0.0.1:PORT/session/ID`.
    let session: String
    let http: CurlClient

    /// How to get the browser when it is missing.
    public static let installHint = "sudo apt-get install chromium chromium-driver (scripts/setup installs them)"

    /// Starts chromedriver and a headless Chromium with a window `width` × `height`; its profile lives in `directory`.
    public static func start(width: Int, height: Int, directory: String) async throws -> Browser {
        let chromium = ProcessInfo.processInfo.environment["SLUICE_CHROMIUM"] ?? "/usr/bin/chromium"
        let chromedriver = ProcessInfo.processInfo.environment["SLUICE_CHROMEDRIVER"] ?? "/usr/bin/chromedriver"
        for path in [chromium, chromedriver] where !FileManager.default.isExecutableFile(atPath: path) {
            throw SupportError("\(path) not found: the dashboard's browser tests need it; install with: \(installHint)")
        }
        let port = try freePort()
        let driver = try ManagedProcess(
            name: "chromedriver", executable: chromedriver, arguments: ["--port=\(port)"], directory: directory,
            installHint: installHint)
        let http = try CurlClient()
        let base = "http://127.0.0.1:\(port)"
        do {
            try await waitUntil("chromedriver to answer on \(port)", timeout: .seconds(20)) {
                guard driver.isRunning else { throw SupportError("chromedriver exited: \(driver.logTail())") }
                let request = HTTPRequest(url: base + "/status", timeout: .seconds(2), retry: .init(maxAttempts: 1))
                return (try? await http.execute(request).status) == 200
            }
            let profile = directory + "/chromium-profile"
            let capabilities: [String: Any] = [
                "capabilities": [
                    "alwaysMatch": [
                        "browserName": "chrome",
                        "goog:loggingPrefs": ["browser": "ALL"],
                        "goog:chromeOptions": [
                            "binary": chromium,
                            "args": [
                                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                "--no-first-run", "--user-data-dir=\(profile)", "--window-size=\(width),\(height)",
                            ],
                        ],
                    ]
                ]
            ]
            let value = try await call(http, "POST", base + "/session", capabilities, timeout: .seconds(60))
            guard let id = (value as? [String: Any])?["sessionId"] as? String else {
                throw SupportError("chromedriver gave no session: \(String(describing: value))")
            }
            let browser = Browser(driver: driver, session: base + "/session/" + id, http: http)
            try await browser.resize(width: width, height: height)
            return browser
        } catch {
            driver.stop()
            throw error
        }
    }

    init(driver: ManagedProcess, session: String, http: CurlClient) {
        self.driver = driver
        self.session = session
        self.http = http
    }

    /// Ends the browser session and stops chromedriver.
    public func close() async {
        _ = try? await Self.call(http, "DELETE", session, nil, timeout: .seconds(10))
        driver.stop()
    }

    public func open(_ url: String) async throws {
        _ = try await command("POST", "/url", ["url": url])
    }

    /// Sets the window's outer size (the page's width is what a phone or a laptop would give it).
    public func resize(width: Int, height: Int) async throws {
        _ = try await command("POST", "/window/rect", ["width": width, "height": height])
    }

    /// Runs `script` (a function body; `arguments[i]` are its arguments) in the page and returns what it returns.
    @discardableResult
    public func run(_ script: String, _ arguments: [Any] = []) async throws -> Any? {
        try await command("POST", "/execute/sync", ["script": script, "args": arguments])
    }

    /// Runs `script` with a callback as its last argument (`arguments[arguments.length - 1]`): for `fetch`.
    public func runAsync(_ script: String, _ arguments: [Any] = []) async throws -> Any? {
        try await command("POST", "/execute/async", ["script": script, "args": arguments])
    }

    /// The text of the first element matching `css`, as the user sees it; nil when none matches.
    public func text(_ css: String) async throws -> String? {
        try await run("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", [css])
            as? String
    }

    /// An attribute of the first element matching `css`; nil when none matches or it has no such attribute.
    public func attribute(_ css: String, _ name: String) async throws -> String? {
        try await run(
            "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;",
            [css, name])
            as? String
    }

    /// How many elements match `css`.
    public func count(_ css: String) async throws -> Int {
        (try await run("return document.querySelectorAll(arguments[0]).length;", [css]) as? Int) ?? 0
    }

    /// Clicks the element matching `css` as a user would (WebDriver's element click).
    public func click(_ css: String) async throws {
        _ = try await command("POST", "/element/\(try await element(css))/click", [:])
    }

    /// Types `text` into the element matching `css` (WebDriver's element send keys).
    public func type(_ css: String, _ text: String) async throws {
        _ = try await command("POST", "/element/\(try await element(css))/value", ["text": text])
    }

    /// Presses keys on whatever has the focus (WebDriver key actions); `"\u{E004}"` is Tab, `"\u{E007}"` Enter.
    public func press(_ keys: String) async throws {
        var actions: [[String: Any]] = []
        for key in keys.unicodeScalars {
            actions.append(["type": "keyDown", "value": String(key)])
            actions.append(["type": "keyUp", "value": String(key)])
        }
        _ = try await command("POST", "/actions", ["actions": [["type": "key", "id": "keyboard", "actions": actions]]])
    }

    /// A PNG of the window, written to `path`.
    public func screenshot(to path: String) async throws {
        guard let base64 = try await command("GET", "/screenshot", nil) as? String,
            let data = Data(base64Encoded: base64)
        else { throw SupportError("chromedriver gave no screenshot") }
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// The browser console's messages so far (errors, CSP violations), as `LEVEL message` lines.
    public func console() async throws -> [String] {
        let entries = try await command("POST", "/se/log", ["type": "browser"]) as? [[String: Any]] ?? []
        return entries.map { "\($0["level"] ?? "") \($0["message"] ?? "")" }
    }

    private func element(_ css: String) async throws -> String {
        let value = try await command("POST", "/element", ["using": "css selector", "value": css])
        guard let object = value as? [String: Any], let id = object.values.first as? String else {
            throw SupportError("no element \(css) on the page")
        }
        return id
    }

    private func command(_ method: String, _ path: String, _ body: [String: Any]?) async throws -> Any? {
        try await Self.call(http, method, session + path, body, timeout: .seconds(30))
    }

    /// One WebDriver command: the answer's `value`, or an error with WebDriver's message.
    static func call(
        _ http: CurlClient, _ method: String, _ url: String, _ body: [String: Any]?, timeout: Duration
    ) async throws -> Any? {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let request = HTTPRequest(
            method: method, url: url, headers: [("Content-Type", "application/json")],
            body: data ?? (method == "POST" ? Data("{}".utf8) : nil),
            timeout: timeout, retry: .init(maxAttempts: 1))
        let response = try await http.execute(request)
        let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
        let value = object?["value"]
        guard response.status == 200 else {
            let message =
                (value as? [String: Any])?["message"] as? String ?? String(decoding: response.body, as: UTF8.self)
            throw SupportError("WebDriver \(method) \(url): HTTP \(response.status): \(message.prefix(600))")
        }
        return value is NSNull ? nil : value
    }
}
