import Foundation
import SluiceCore
import Testing

/// The one rule for what of a URL may be logged, stored in an event or shown to a viewer.
@Suite struct RedactionTests {
    @Test("a URL keeps scheme, host, port and path, and loses user info, query and fragment", arguments: [
        ("https://user:pass@example.com/a?b=c", "https://example.com/a"),
        ("http://token@127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("https://example.com/a@b", "https://example.com/a@b"),
        ("https://example.com", "https://example.com"),
        ("https://example.com?api_key=k", "https://example.com"),
        ("https://example.com/q#k", "https://example.com/q"),
        ("http://user:p%40ss@prom:9090/api/prom?x=1", "http://prom:9090/api/prom"),
        ("https://stats.example.com/q?expr={{query}}&key=k", "https://stats.example.com/q"),
        ("https://a:b@[::1]:8443/x", "https://[::1]:8443/x"),
        ("http://a@b@host/p", "http://host/p"),
    ])
    func keepingThePath(url: String, expected: String) {
        #expect(Redaction.url(url) == expected)
    }

    @Test("a webhook keeps scheme, host and port only: its path may be the secret", arguments: [
        ("https://hooks.slack.com/services/T000/B000/XXXXSECRET", "https://hooks.slack.com"),
        ("https://user:pw@hooks.example.com:8443/h?token=t#f", "https://hooks.example.com:8443"),
        ("https://discord.com/api/webhooks/123/abc", "https://discord.com"),
        ("http://127.0.0.1:9?token=t", "http://127.0.0.1:9"),
        ("hooks.example.com/secret", "hooks.example.com"),
    ])
    func keepingTheOrigin(url: String, expected: String) {
        #expect(Redaction.url(url, keeping: .origin) == expected)
    }

    @Test("an ASCII URL, read on its bytes, is redacted as by Character")
    func bytesAsCharacters() {
        for url in [
            "https://user:pass@example.com/a?b=c", "http://a@b@host/p", "hooks.example.com/secret", "://x", "",
            "http://", "http://@h", "h@x?y#z", "https://a/b#c?d", "mailto:X@Y", "http://a\r\n/b?c", "HTTP://Ex.COM/P",
            "https://stats.example.com/q?expr={{query}}&key=k", "https://ü@bücher.example/é?k", "http://a/\u{301}b",
        ] {
            for part in [Redaction.URLPart.path, .origin] {
                #expect(Redaction.url(url, keeping: part) == Redaction.characterURL(url, keeping: part), "\(url.debugDescription)")
            }
        }
    }

    @Test func aHeaderValueNeverDescribesAWrittenValue() {
        #expect("\(HeaderValue.value("sk-live-1"))" == "<redacted>")
        #expect("\(HeaderValue.fromEnv("PROM_KEY"))" == "fromEnv PROM_KEY")
        #expect("\(HeaderValue.fromFile("/var/run/secrets/prom"))" == "fromFile /var/run/secrets/prom")
    }
}

/// `headers` of a metric provider: a string, `{fromEnv: VARIABLE}` or `{fromFile: PATH}`.
@Suite struct StrategyHeadersTests {
    static let path = "spec.analysis.providers.prom.prometheus.headers.X-Api-Key"

    @Test func everyFormIsRead() throws {
        let yaml = baseStrategy.replacingOccurrences(
            of: "timeout: 5s}",
            with: "timeout: 5s, headers: {X-Scope-OrgID: shop, X-Api-Key: {fromEnv: PROM_KEY}, "
                + "Authorization: {fromFile: /var/run/secrets/prom}}}")
        let result = StrategyLoader.load(yaml: yaml, file: "t.yaml")
        #expect(result.errors == [])
        let strategy = try #require(result.strategies.first)
        guard case .prometheus(let config) = strategy.analysis.providers["prom"] else {
            Issue.record("no prometheus provider")
            return
        }
        #expect(
            config.headers == [
                "X-Scope-OrgID": .value("shop"), "X-Api-Key": .fromEnv("PROM_KEY"),
                "Authorization": .fromFile("/var/run/secrets/prom"),
            ])
        let canonical = strategy.canonicalJSON().filter { !$0.isWhitespace }
        #expect(canonical.contains(#""X-Api-Key":{"fromEnv":"PROM_KEY"}"#))
        #expect(canonical.contains(#""X-Scope-OrgID":"shop""#))
    }

    static let invalid: [InvalidCase] = [
        InvalidCase(
            "timeout: 5s}", "timeout: 5s, headers: {X-Api-Key: {fromEnv: 1KEY}}}",
            "19:101: \(path).fromEnv: \"1KEY\" is not an environment variable name (letters, digits, _)"),
        InvalidCase(
            "timeout: 5s}", "timeout: 5s, headers: {X-Api-Key: {fromEnv: K, fromFile: /k}}}",
            "19:104: \(path).fromFile: a header's value comes from fromEnv or fromFile, not both"),
        InvalidCase(
            "timeout: 5s}", "timeout: 5s, headers: {X-Api-Key: {}}}",
            "19:91: \(path): needs fromEnv or fromFile (or the value as a string)"),
        InvalidCase(
            "timeout: 5s}", "timeout: 5s, headers: {X-Api-Key: 31337}}",
            "19:91: \(path): expected a string, got an integer"),
        InvalidCase(
            "timeout: 5s}", "timeout: 5s, headers: {X-Api-Key: {fromEnvv: K}}}",
            "19:92: \(path).fromEnvv: unknown key \"fromEnvv\"; did you mean \"fromEnv\"?"),
        InvalidCase(
            "{webhook: \"https://hooks.example.com/x\"",
            "{webhook: \"htps://u:pw@hooks.slack.com/services/T0/B0/31337\"",
            "25:17: spec.notifications[0].webhook: \"htps://hooks.slack.com\" is not an http:// or https:// URL"),
        InvalidCase(
            "{webhook: \"https://hooks.example.com/x\"",
            "{webhook: \"https://u:pw@hooks.slack.com/services/T0/B0/31337 x\"",
            "25:17: spec.notifications[0].webhook: \"https://hooks.slack.com\" is not a valid URL: "
                + "it needs a host and no spaces"),
        InvalidCase(
            "timeout: 5s}", "timeout: 5s, headers: {X-Api-Key: [a]}}",
            "19:91: \(path): expected a string, {fromEnv: VARIABLE} or {fromFile: PATH}, got a list"),
    ]

    @Test(arguments: invalid)
    func invalidHeader(_ testCase: InvalidCase) {
        let result = StrategyLoader.load(yaml: testCase.yaml, file: "t.yaml")
        let got = result.errors.map { "\($0.line):\($0.column): \($0.path): \($0.message)" }
        #expect(got == testCase.errors)
        #expect(result.strategies.isEmpty)
        // A mistyped value may be the key itself, a webhook's path the secret: no error repeats them.
        #expect(!got.joined().contains("31337") && !got.joined().contains("pw"))
    }

    @Test func storedStrategiesWithPlainHeadersStillDecode() throws {
        let decoded = try JSONDecoder().decode(
            [HeaderValue].self, from: Data(#"["v", {"fromEnv": "K"}, {"fromFile": "/f"}]"#.utf8))
        #expect(decoded == [.value("v"), .fromEnv("K"), .fromFile("/f")])
        let config = PrometheusConfig(address: "http://p:9090", headers: ["A": "v", "B": .fromEnv("K")])
        let roundTrip = try JSONDecoder().decode(PrometheusConfig.self, from: JSONEncoder().encode(config))
        #expect(roundTrip == config)
    }
}
