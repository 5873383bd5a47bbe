import Foundation
import SluiceAPI
import SluiceStore
import SluiceTestSupport
import Testing

/// `database` and `databasePasswordFile` in sluice.yaml: the PostgreSQL store instead of `statePath`.
struct DatabaseConfigTests {
    func directory() throws -> String {
        let dir = try makeTemporaryDirectory("sluice-config-db")
        try "tokens: []\n".write(toFile: dir + "/tokens.yaml", atomically: true, encoding: .utf8)
        try "s3cret\n".write(toFile: dir + "/db-password", atomically: true, encoding: .utf8)
        return dir
    }

    @Test
    func aDatabaseURLAndItsPasswordFileLoad() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = """
            tokensFile: tokens.yaml
            database: postgres://sluice@db.internal:6432/rollouts?sslmode=verify-full&sslrootcert=ca.pem
            databasePasswordFile: db-password
            """
        let config = try ServerConfig.parse(text, file: "sluice.yaml", baseDirectory: dir)
        #expect(
            config.database
                == PostgresConfiguration(
                    host: "db.internal", port: 6432, user: "sluice", database: "rollouts", tls: .verifyFull,
                    rootCertificateFile: dir + "/ca.pem", passwordFile: dir + "/db-password"))
        let defaults = try ServerConfig.parse(
            "tokensFile: tokens.yaml\ndatabase: postgresql://app@localhost/app\n", file: "sluice.yaml",
            baseDirectory: dir)
        #expect(defaults.database?.port == 5432 && defaults.database?.tls == .prefer)
        #expect(defaults.database?.passwordFile == nil)
        #expect(try ServerConfig.parse("tokensFile: tokens.yaml\n", file: "c", baseDirectory: dir).database == nil)
    }

    /// Each case: the lines after `tokensFile` (line 1), what the error says, and the line and column it names.
    @Test(arguments: [
        ("database: mysql://a@b/c\n", "must be a postgres:// URL", 2, 11),
        ("database: postgres://db.internal/app\n", "names no user", 2, 11),
        ("database: postgres://app@/app\n", "names no host", 2, 11),
        ("database: postgres://app@db.internal\n", "names no database", 2, 11),
        ("database: postgres://app@db.internal/app?sslmode=always\n", "sslmode must be one of disable, prefer", 2, 11),
        ("database: postgres://app@db.internal/app?connect_timeout=5\n", "unknown parameter connect_timeout", 2, 11),
        ("database: postgres://app:hunter2@db.internal/app\n", "must not hold a password", 2, 11),
        ("database: postgres://app@db.internal/app?password=hunter2\n", "must not hold a password", 2, 11),
        ("database: postgres://app@db.internal/app\nstatePath: s.db\n", "name two stores", 2, 11),
        ("database: postgres://app@db.internal/app\ndatabasePasswordFile: nope\n", "cannot read", 3, 23),
        ("databasePasswordFile: db-password\n", "`database` is not", 2, 23),
        ("database: [a]\n", "must be a non-empty string", 2, 11),
    ] as [(String, String, Int, Int)])
    func aBadDatabaseSettingSaysWhatAndWhereWithoutThePassword(text: String, says: String, line: Int, column: Int)
        throws
    {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let error = #expect(throws: ConfigError.self) {
            try ServerConfig.parse("tokensFile: tokens.yaml\n" + text, file: "sluice.yaml", baseDirectory: dir)
        }
        #expect(error?.message.contains(says) == true, "\(String(describing: error))")
        #expect(error?.line == line && error?.column == column, "\(String(describing: error))")
        #expect(error?.description.hasPrefix("sluice.yaml:") == true)
        #expect(error?.description.contains("hunter2") == false, "the password never shows")
    }
}
