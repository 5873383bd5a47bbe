import Foundation
import SluiceCore

/// A metric provider's headers with their values resolved: written values as they are, `fromEnv` read when the
/// provider is built, `fromFile` read when it is built and again whenever the file changes (a rotated key is sent
/// from the next query on). A missing or empty variable or file is an error naming it, never showing a value.
struct ProviderHeaders: Sendable {
    private let provider: String
    private let written: [String: String]
    private let files: [String: HeaderFile]

    /// No headers.
    init() {
        provider = ""
        written = [:]
        files = [:]
    }

    /// Resolves `headers` now, so a strategy naming a missing variable or file fails when its provider is built.
    /// `files` keeps what was read across providers: the controller builds them afresh every tick.
    init(_ headers: [String: HeaderValue], environment: [String: String], files cache: HeaderFiles, provider: String)
        throws
    {
        var written: [String: String] = [:]
        var files: [String: HeaderFile] = [:]
        for (name, value) in headers {
            switch value {
            case .value(let text):
                written[name] = text
            case .fromEnv(let variable):
                guard let text = environment[variable], !text.isEmpty else {
                    let why = environment[variable] == nil ? "is not set" : "is empty"
                    throw ProviderError(
                        .invalidConfiguration, provider: provider,
                        "header \(name): environment variable \(variable) \(why) on the server")
                }
                written[name] = text
            case .fromFile(let path):
                let file = cache.file(path)
                _ = try file.current(header: name, provider: provider)
                files[name] = file
            }
        }
        self.provider = provider
        self.written = written
        self.files = files
    }

    /// Whether a header named `name` (in any case) is set.
    func contains(_ name: String) -> Bool {
        written.keys.contains { $0.caseInsensitiveCompare(name) == .orderedSame }
            || files.keys.contains { $0.caseInsensitiveCompare(name) == .orderedSame }
    }

    /// Every header, sorted by name, with the current content of its file where it has one.
    func fields() throws -> [(name: String, value: String)] {
        var fields = written.map { (name: $0.key, value: $0.value) }
        for (name, file) in files {
            fields.append((name: name, value: try file.current(header: name, provider: provider)))
        }
        return fields.sorted { $0.name < $1.name }
    }
}

/// The `fromFile` header files read so far, by path.
public final class HeaderFiles: @unchecked Sendable {
    private let lock = NSLock()
    private var files: [String: HeaderFile] = [:]

    public init() {}

    func file(_ path: String) -> HeaderFile {
        lock.withLock {
            if let file = files[path] { return file }
            let file = HeaderFile(path: path)
            files[path] = file
            return file
        }
    }
}

/// One `fromFile` header file: its content, re-read when its inode, size or modification time changes (a
/// Kubernetes Secret volume swaps a symlink, which changes the inode).
final class HeaderFile: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var stamp: [Int]?
    private var value = ""

    init(path: String) { self.path = path }

    /// The content now: one `stat` a call, a read only when the file changed. `header` and `provider` name it
    /// in an error.
    func current(header: String, provider: String) throws -> String {
        try lock.withLock {
            let now = Self.stamp(path)
            if let stamp, stamp == now { return value }
            let files = FileManager.default
            guard !now.isEmpty, let data = files.contents(atPath: path) else {
                let why = !files.fileExists(atPath: path) ? "no such file" : "permission denied or not a regular file"
                throw ProviderError(
                    .invalidConfiguration, provider: provider, "header \(header): cannot read fromFile \(path): \(why)")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else {
                throw ProviderError(
                    .invalidConfiguration, provider: provider, "header \(header): fromFile \(path) is empty")
            }
            (stamp, value) = (now, text)
            return text
        }
    }

    private static func stamp(_ path: String) -> [Int] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        return [Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
    }
}
