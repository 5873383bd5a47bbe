import ArgumentParser
import SluiceAPI

/// `sluice backup --to FILE [--config FILE | --state FILE]`: the SQLite store copied while the server runs.
struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the server's SQLite store to FILE while it runs (SQLite's online backup).",
        discussion: """
            Run it where the store is (e.g. kubectl exec into the server's pod). The copy is one consistent \
            snapshot, readable by its owner only, and replaces FILE atomically. To restore: stop the server, put the \
            copy in place of statePath (removing statePath-wal and statePath-shm), start the server \
            (docs/operations.md).
            """)

    @Option(help: "Where to write the copy.") var to: String
    @Option(help: "The server config whose statePath is copied.") var config: String = "sluice.yaml"
    @Option(help: "The store file to copy, instead of the config's statePath.") var state: String?

    func run() throws {
        do {
            let source = try state ?? Self.statePath(config: config)
            let copy = try StateBackup.run(statePath: source, to: to)
            let rollouts = copy.rollouts == 1 ? "1 rollout" : "\(copy.rollouts) rollouts"
            let contents = "\(rollouts), events up to seq \(copy.lastSeq), \(copy.bytes) bytes"
            write("backed up \(source) to \(copy.path): \(contents)\n")
        } catch {
            writeError("sluice backup: \(error)")
            throw ExitCode(1)
        }
    }

    /// The SQLite file the server config names; a PostgreSQL store is pg_dump's to back up.
    static func statePath(config: String) throws -> String {
        let server = try ServerConfig.load(path: config)
        guard server.database == nil else {
            throw ValidationError(
                "\(config) sets `database`: the store is PostgreSQL; back it up with pg_dump (docs/ha.md)")
        }
        return server.statePath
    }
}
