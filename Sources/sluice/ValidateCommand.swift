import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore

/// `sluice validate FILE|DIR...`: checks strategy files offline and prints every error compiler style.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check strategy files offline; print every error as file:line:column.",
        discussion: """
            Directories are searched recursively for *.yaml and *.yml files. Exit status: 0 when every \
            file is valid, 1 when any is invalid or cannot be read, 64 on bad usage.
            """
    )

    @Argument(help: "Strategy files, or directories holding them.")
    var paths: [String]

    @Flag(name: .shortAndLong, help: "Print only errors.")
    var quiet = false

    func run() throws {
        var errorCount = 0
        var invalidFiles = 0
        var defined: [StrategyKey: SourcePosition] = [:]
        for file in try StrategyFiles.expand(paths) {
            let text: String
            do {
                text = try StrategyFiles.read(file)
            } catch {
                printError("\(file): error: \(error)")
                errorCount += 1
                invalidFiles += 1
                continue
            }
            let result = StrategyLoader.load(yaml: text, file: file)
            var errors = result.errors
            var names: [String] = []
            for (strategy, position) in zip(result.strategies, result.positions) {
                if let other = defined[strategy.key] {
                    errors.append(
                        StrategyError(
                            code: .conflict, file: file, line: position.line, column: position.column, path: "",
                            message: "strategy \(strategy.key) is already defined at \(other)"
                        ))
                } else {
                    defined[strategy.key] = position
                }
                names.append(strategy.key.description)
            }
            errors.forEach { printError("\($0)") }
            errorCount += errors.count
            if errors.isEmpty {
                if !quiet { write("\(file): ok (\(names.joined(separator: ", ")))\n") }
            } else {
                invalidFiles += 1
            }
        }
        if errorCount > 0 {
            printError("\(errorCount) error\(errorCount == 1 ? "" : "s") in \(invalidFiles) file\(invalidFiles == 1 ? "" : "s")")
            throw ExitCode(1)
        }
    }
}

/// Finding and reading strategy files for the CLI.
enum StrategyFiles {
    struct ReadError: Error, CustomStringConvertible {
        var description: String
    }

    /// `paths` with each directory replaced by the *.yaml and *.yml files under it, sorted.
    static func expand(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                files.append(path)
                continue
            }
            // `validate .` names files `a.yaml`, not `./a.yaml`.
            let prefix = path == "." ? "" : path.hasSuffix("/") ? path : path + "/"
            let found = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? [])
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
                .sorted()
                .map { prefix + $0 }
            if found.isEmpty {
                printError("\(path): error: no *.yaml or *.yml files in this directory")
                throw ExitCode(1)
            }
            files += found
        }
        return files
    }

    /// The file's text; a clear error when it is missing, unreadable or not UTF-8.
    static func read(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ReadError(description: "cannot read: no such file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ReadError(description: "cannot read: permission denied or not a regular file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ReadError(description: "cannot read: not UTF-8 text")
        }
        return text
    }
}

/// One line on standard error.
func printError(_ line: TerminalText) {
    writeError(line)
}
