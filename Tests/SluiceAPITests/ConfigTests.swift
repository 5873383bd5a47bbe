import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

/// The server config and the tokens file: good ones load, bad ones say what and where.
struct ConfigTests {
    func directory() throws -> String {
        let dir = try makeTemporaryDirectory("sluice-config")
        try "tokens: []\n".write(toFile: dir + "/tokens.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/strategies", withIntermediateDirectories: true)
        return dir
    }

    @Test
    func fullConfigLoadsWithPathsRelativeToTheFile() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "cert".write(toFile: dir + "/tls.crt", atomically: true, encoding: .utf8)
        try "key".write(toFile: dir + "/tls.key", atomically: true, encoding: .utf8)
        let text = """
            listen: 0.0.0.0:8443
            tls: {cert: tls.crt, key: tls.key}
            tokensFile: tokens.yaml
            statePath: /var/lib/sluice/state.db
            kubeconfig: kube/config
            context: prod
            strategiesDir: strategies
            """
        try text.write(toFile: dir + "/sluice.yaml", atomically: true, encoding: .utf8)
        let config = try ServerConfig.load(path: dir + "/sluice.yaml")
        #expect(config.host == "0.0.0.0" && config.port == 8443)
        #expect(config.tls == .init(certificateFile: dir + "/tls.crt", keyFile: dir + "/tls.key"))
        #expect(config.tokensFile == dir + "/tokens.yaml")
        #expect(config.statePath == "/var/lib/sluice/state.db")
        #expect(config.kubeconfig == dir + "/kube/config")
        #expect(config.context == "prod")
        #expect(config.strategiesDir == dir + "/strategies")
    }

    @Test
    func defaultsApply() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try ServerConfig.parse("tokensFile: tokens.yaml\n", file: "c.yaml", baseDirectory: dir)
        #expect(config.host == "127.0.0.1" && config.port == 7700)
        #expect(config.statePath == dir + "/sluice.db")
        #expect(config.tls == nil && config.strategiesDir == nil)
        #expect(config.idleTimeout == .seconds(10) && config.maxConnections == 4096)
        let limits = try ServerConfig.parse(
            "tokensFile: tokens.yaml\nidleTimeout: 1m30s\nmaxConnections: 100\n", file: "c.yaml", baseDirectory: dir)
        #expect(limits.idleTimeout == .seconds(90) && limits.maxConnections == 100)
    }

    @Test(arguments: [
        ("tokensFile: tokens.yaml\nlisten: nowhere\n", 2, "`listen` must be HOST:PORT"),
        ("tokensFile: tokens.yaml\nlisten: 127.0.0.1:70000\n", 2, "`listen` must be HOST:PORT"),
        ("tokensFile: tokens.yaml\nlistne: :80\n", 2, "unknown setting `listne`"),
        ("listen: :80\n", 1, "`tokensFile` is required"),
        ("tokensFile: missing.yaml\n", 1, "cannot read"),
        ("tokensFile: tokens.yaml\ntls: {cert: a.crt}\n", 2, "`tls.key`"),
        ("tokensFile: tokens.yaml\ntls: {cert: a.crt, key: a.key}\n", 2, "cannot read"),
        ("tokensFile: tokens.yaml\nstrategiesDir: nope\n", 2, "is not a directory"),
        ("tokensFile: [\n", nil, "not valid YAML"),
        ("- a\n", 1, "must be a mapping"),
        ("tokensFile: tokens.yaml\nidleTimeout: 10\n", 2, "`idleTimeout` must be a positive duration"),
        ("tokensFile: tokens.yaml\nidleTimeout: 0s\n", 2, "`idleTimeout` must be a positive duration"),
        ("tokensFile: tokens.yaml\nmaxConnections: 0\n", 2, "`maxConnections` must be a whole number"),
        ("tokensFile: tokens.yaml\nmaxConnections: many\n", 2, "`maxConnections` must be a whole number"),
    ] as [(String, Int?, String)])
    func badConfigSaysWhatAndWhere(text: String, line: Int?, says: String) throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let error = #expect(throws: ConfigError.self) {
            try ServerConfig.parse(text, file: "sluice.yaml", baseDirectory: dir)
        }
        #expect(error?.message.contains(says) == true, "\(String(describing: error))")
        if let line { #expect(error?.line == line, "\(String(describing: error))") }
        #expect(error?.description.hasPrefix("sluice.yaml") == true)
    }

    @Test
    func tokensFileIsChecked() throws {
        let good = "tokens:\n  - {name: ci, role: ci, sha256: \(TokenHash.hex("secret"))}\n"
        #expect(try TokenFile.parse(good, file: "t.yaml").tokens == [TokenEntry(name: "ci", role: .ci, sha256: TokenHash.hex("secret"))])
        #expect(throws: ConfigError.self) { try TokenFile.parse("tokens:\n  - {name: ci, role: root, sha256: x}\n", file: "t") }
        #expect(throws: ConfigError.self) { try TokenFile.parse("tokens:\n  - {name: ci, role: ci, sha256: abc}\n", file: "t") }
        let twice = good + "  - {name: ci, role: viewer, sha256: \(TokenHash.hex("other"))}\n"
        #expect(throws: ConfigError.self) { try TokenFile.parse(twice, file: "t") }
    }

    @Test
    func tokenHashIsSHA256Hex() {
        // echo -n secret | sha256sum
        #expect(TokenHash.hex("secret") == "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b")
        #expect(TokenHash.constantTimeEqual("ab", "AB"))
        #expect(!TokenHash.constantTimeEqual("ab", "ac"))
        #expect(!TokenHash.constantTimeEqual("ab", "abc"))
    }

    @Test
    func rotatedTokensFileIsPickedUpWithoutRestart() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/tokens.yaml"
        try "tokens:\n  - {name: ci-old, role: ci, sha256: \(TokenHash.hex("old"))}\n".write(toFile: path, atomically: true, encoding: .utf8)
        let auth = try Authenticator(tokensFile: path)
        #expect((try? auth.authorize(authorization: "Bearer old", role: .ci).get())?.name == "ci-old")
        try "tokens:\n  - {name: ci-new, role: ci, sha256: \(TokenHash.hex("new"))}\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect((try? auth.authorize(authorization: "Bearer new", role: .ci).get())?.name == "ci-new")
        #expect(throws: Authenticator.Failure.self) { try auth.authorize(authorization: "Bearer old", role: .ci).get() }
        try "tokens: [oops".write(toFile: path, atomically: true, encoding: .utf8)
        #expect((try? auth.authorize(authorization: "Bearer new", role: .ci).get())?.name == "ci-new", "a bad file keeps the last good list")
        #expect(auth.reloadFailure != nil)
    }
}
