import Foundation

/// Who made a request: the token's name (recorded as the actor of commands) and its role.
public struct Identity: Sendable, Hashable {
    public var name: String
    public var role: Role
    public init(name: String, role: Role) {
        self.name = name
        self.role = role
    }
}

/// Checks bearer tokens against the tokens file. The file is re-read when it changes on disk, so a
/// token can be rotated without a restart; a file that becomes unreadable or invalid keeps the last
/// good list (and the failure is reported through `reloadFailure`).
public final class Authenticator: @unchecked Sendable {
    /// Why a request was refused.
    public enum Failure: String, Sendable, CaseIterable {
        /// No `Authorization: Bearer` header.
        case missing
        /// A token that matches no entry.
        case unknown
        /// A known token without the role.
        case forbidden
    }

    private let path: String?
    private let lock = NSLock()
    private var entries: [TokenEntry]
    private var loadedModification: FileStamp?
    private var lastReloadError: String?

    /// Tokens from a file, re-read when the file's modification time changes.
    public init(tokensFile path: String) throws {
        self.path = path
        self.entries = try TokenFile.load(path: path).tokens
        self.loadedModification = Self.modification(of: path)
    }

    /// A fixed list (tests, and `serve` without a tokens file refuses every token).
    public init(entries: [TokenEntry]) {
        self.path = nil
        self.entries = entries
    }

    /// The error of the last failed reload, when the file on disk is currently bad.
    public var reloadFailure: String? { lock.withLock { lastReloadError } }

    /// The identity of `authorization` (the header's value) if it may use a route needing `role`.
    public func authorize(authorization: String?, role needed: Role) -> Result<Identity, Failure> {
        guard let token = Self.bearerToken(authorization) else { return .failure(.missing) }
        let digest = TokenHash.hex(token)
        var match: TokenEntry?
        // Every entry is compared, so the time taken says nothing about which one matched.
        for entry in currentEntries() where TokenHash.constantTimeEqual(entry.sha256, digest) {
            match = entry
        }
        guard let match else { return .failure(.unknown) }
        guard match.role.includes(needed) else { return .failure(.forbidden) }
        return .success(Identity(name: match.name, role: match.role))
    }

    /// The name of the token in `authorization`, for logging a refusal (never the token itself).
    public func tokenName(authorization: String?) -> String? {
        guard let token = Self.bearerToken(authorization) else { return nil }
        let digest = TokenHash.hex(token)
        return currentEntries().first { TokenHash.constantTimeEqual($0.sha256, digest) }?.name
    }

    private func currentEntries() -> [TokenEntry] {
        lock.withLock {
            guard let path else { return entries }
            let modification = Self.modification(of: path)
            if modification != loadedModification {
                loadedModification = modification
                do {
                    entries = try TokenFile.load(path: path).tokens
                    lastReloadError = nil
                } catch {
                    lastReloadError = "\(error)"
                }
            }
            return entries
        }
    }

    /// What identifies one version of the file on disk: a rename-into-place changes the inode,
    /// an edit in place changes the time or the size.
    private struct FileStamp: Equatable {
        var modified: Date?
        var size: Int?
        var inode: Int?
    }

    private static func modification(of path: String) -> FileStamp? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        return FileStamp(
            modified: attributes[.modificationDate] as? Date,
            size: (attributes[.size] as? NSNumber)?.intValue,
            inode: (attributes[.systemFileNumber] as? NSNumber)?.intValue)
    }

    static func bearerToken(_ authorization: String?) -> String? {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}

extension Authenticator.Failure: Error {}
