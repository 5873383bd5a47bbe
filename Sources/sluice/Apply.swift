import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore

/// `sluice apply -f FILE|DIR [--dry-run]`: validate on the server, then store; created / configured / unchanged.
struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply strategy files: prints created, configured (with a diff) or unchanged.",
        discussion: "Exit codes: 0 applied; 1 a strategy is invalid; 3 server unreachable or error; 64 usage.")

    @Option(name: .customShort("f"), help: "A strategy file, or a directory of *.yaml / *.yml files.")
    var files: [String]
    @Flag(name: .customLong("dry-run"), help: "Validate and show what would change; store nothing.")
    var dryRun = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await runClient {
            let api = try client.client()
            let read = try files.flatMap(Self.expand).map(Self.documents)
            let documents = read.flatMap { file in file.documents.documents.map { (file: file.path, document: $0) } }
            let errors = read.flatMap(\.documents.errors)
            guard !documents.isEmpty || !errors.isEmpty else {
                throw CLIError(.usage, "no strategy documents in \(files.joined(separator: ", "))")
            }
            for error in errors { print(stderr: "\(error.description)") }
            var invalid = errors.count
            for (file, document) in documents {
                invalid += try await apply(document, in: file, api) ? 0 : 1
            }
            if invalid > 0 {
                throw CLIError(
                    .verdict, "\(invalid) of \(documents.count + errors.count) strategies invalid; nothing stored for them")
            }
        }
    }

    /// Applies one document; false when it is invalid (its errors are printed compiler-style).
    func apply(_ document: StrategySourceDocument, in file: String, _ api: APIClient) async throws -> Bool {
        guard let key = document.key else {
            let error = document.keyError.map(\.description) ?? "\(file):\(document.firstLine):1: error: not a strategy"
            print(stderr: "\(error)")
            return false
        }
        let path = "/v1/strategies/\(APIClient.escape(key.namespace))/\(APIClient.escape(key.name))"
            + (dryRun ? "?dryRun=true" : "")
        let response = try await api.sendRaw(
            "PUT", path, body: Data(document.text.utf8), contentType: "application/yaml")
        if response.status == 422, let body = try? JSONDecoder().decode(ErrorBody.self, from: response.body) {
            for detail in body.error.details {
                let line = (detail.line ?? 1) + document.firstLine - 1
                let column = detail.column.map { ":\($0)" } ?? ""
                let at = detail.path.map { "\($0): " } ?? ""
                print(stderr: "\(file):\(line)\(column): error: \(at)\(detail.message)")
            }
            if body.error.details.isEmpty { print(stderr: "\(file):\(document.firstLine): error: \(body.error.message)") }
            return false
        }
        guard (200..<300).contains(response.status) else { throw APIClient.failure(response, method: "PUT", path: path) }
        let result = try api.decode(ApplyResult.self, from: response)
        let suffix = dryRun ? " (dry run)" : ""
        switch result.outcome {
        case .created: write("strategy \(result.strategy) created, revision \(result.revision)\(suffix)\n")
        case .unchanged: write("strategy \(result.strategy) unchanged, revision \(result.revision)\(suffix)\n")
        case .configured:
            write("strategy \(result.strategy) configured, revision \(result.revision)\(suffix)\n")
            if let diff = result.diff, !diff.isEmpty { write("\(lines: diff.hasSuffix("\n") ? diff : diff + "\n")") }
        }
        return true
    }

    /// A file, or the *.yaml / *.yml files of a directory (sorted, not recursive).
    static func expand(_ path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CLIError(.usage, "\(path): no such file or directory")
        }
        guard isDirectory.boolValue else { return [path] }
        let names = try FileManager.default.contentsOfDirectory(atPath: path)
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { path + "/" + $0 }
    }

    /// A file cut into its documents by the strategy loader's rule (`StrategyLoader.documents`), each sent alone.
    static func documents(_ path: String) throws -> (path: String, documents: StrategySourceDocuments) {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError(.usage, "cannot read \(path)") }
        return (path, StrategyLoader.documents(yaml: String(decoding: data, as: UTF8.self), file: path))
    }
}

func print(stderr text: TerminalText) {
    writeError(text)
}
