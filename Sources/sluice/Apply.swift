import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore
import Yams

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
            let documents = try files.flatMap(Self.expand).flatMap(Self.documents)
            guard !documents.isEmpty else { throw CLIError(.usage, "no strategy documents in \(files.joined(separator: ", "))") }
            var invalid = 0
            for document in documents {
                invalid += try await apply(document, api) ? 0 : 1
            }
            if invalid > 0 {
                throw CLIError(.verdict, "\(invalid) of \(documents.count) strategies invalid; nothing stored for them")
            }
        }
    }

    /// One `---` document of a file, with the line it starts on.
    struct Document {
        var file: String
        var firstLine: Int
        var text: String
        var key: StrategyKey?
        var keyError: String?
    }

    /// Applies one document; false when it is invalid (its errors are printed compiler-style).
    func apply(_ document: Document, _ api: APIClient) async throws -> Bool {
        guard let key = document.key else {
            print(stderr: "\(document.file):\(document.firstLine):1: error: \(document.keyError ?? "not a strategy")")
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
                print(stderr: "\(document.file):\(line)\(column): error: \(at)\(detail.message)")
            }
            if body.error.details.isEmpty { print(stderr: "\(document.file):\(document.firstLine): error: \(body.error.message)") }
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

    /// Splits a file at `---` lines, keeping each document's text and first line for error positions.
    static func documents(_ file: String) throws -> [Document] {
        guard let data = FileManager.default.contents(atPath: file) else { throw CLIError(.usage, "cannot read \(file)") }
        let lines = String(decoding: data, as: UTF8.self).components(separatedBy: "\n")
        var documents: [Document] = []
        var start = 0
        func flush(_ end: Int) {
            let text = lines[start..<end].joined(separator: "\n")
            let meaningful = lines[start..<end].contains {
                let t = $0.trimmingCharacters(in: .whitespaces)
                return !t.isEmpty && !t.hasPrefix("#")
            }
            if meaningful { documents.append(document(file: file, firstLine: start + 1, text: text + "\n")) }
        }
        for (index, line) in lines.enumerated() where line.hasPrefix("---") && line.trimmingCharacters(in: .whitespaces).allSatisfy({ $0 == "-" }) {
            flush(index)
            start = index + 1
        }
        flush(lines.count)
        if documents.isEmpty {
            // An empty file in a directory is an error, as `sluice validate` reports it, not silently skipped.
            var empty = Document(file: file, firstLine: 1, text: "")
            empty.keyError = "no strategy document in this file"
            documents.append(empty)
        }
        return documents
    }

    /// Reads `metadata.name` and `metadata.namespace`, which the API path needs.
    static func document(file: String, firstLine: Int, text: String) -> Document {
        var document = Document(file: file, firstLine: firstLine, text: text)
        // `Yams.load` builds every node an alias stands for: check what the text expands to first.
        if let excess = YAMLBudget.excess(in: text) {
            document.keyError = "line \(excess.line + firstLine - 1), column \(excess.column): \(excess.message)"
            return document
        }
        do {
            guard let root = try Yams.load(yaml: text) as? [String: Any] else {
                document.keyError = "a strategy document must be a mapping (apiVersion, kind, metadata, spec)"
                return document
            }
            guard let metadata = root["metadata"] as? [String: Any], let name = metadata["name"] as? String, !name.isEmpty
            else {
                document.keyError = "metadata.name is required"
                return document
            }
            document.key = StrategyKey(namespace: metadata["namespace"] as? String ?? "default", name: name)
        } catch {
            document.keyError = "not valid YAML: \(error)"
        }
        return document
    }
}

func print(stderr text: TerminalText) {
    writeError(text)
}
