import Foundation
import Logging
import SluiceCore

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
/// good list: the failure is logged once (with file:line:col), counted, and shown by `reloadStatus()`, so a
/// revocation that did not take effect is visible.
public final class Authenticator: @unchecked Sendable {
    /// Whether the tokens file on disk is the list in use.
    public struct ReloadStatus: Sendable, Hashable {
        /// Why the file on disk is not in use (file:line:col: message), while it is bad.
        public var error: ConfigError?
        /// When the file on disk was first found bad, while it is.
        public var failingSince: Timestamp?
        /// Reloads that failed since the start.
        public var failures: Int
        /// Tokens in the list in use.
        public var tokens: Int
    }

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
    private var lastReloadError: ConfigError?
    private var failingSince: Timestamp?
    private var reloadFailures = 0
    private let logger: Logger?
    private let now: @Sendable () -> Timestamp
    /// Checks JWTs of the configured OIDC issuers, when there are any.
    public let oidc: OIDCVerifier?

    /// Tokens from a file, re-read when the file's modification time changes; reloads are logged to `logger`.
    public init(
        tokensFile path: String, logger: Logger? = nil, oidc: OIDCVerifier? = nil,
        now: @escaping @Sendable () -> Timestamp = APIServer.systemNow
    ) throws {
        self.oidc = oidc
        self.path = path
        self.entries = try TokenFile.load(path: path).tokens
        self.loadedModification = Self.modification(of: path)
        self.logger = logger
        self.now = now
    }

    /// A fixed list (tests, and `serve` without a tokens file refuses every token).
    public init(entries: [TokenEntry], oidc: OIDCVerifier? = nil, logger: Logger? = nil) {
        self.oidc = oidc
        self.path = nil
        self.entries = entries
        self.logger = logger
        self.now = APIServer.systemNow
    }

    /// The error of the last failed reload, when the file on disk is currently bad.
    public var reloadFailure: String? { reloadStatus().error.map(\.description) }

    /// Re-reads the file if it changed, then says whether the list in use is the file on disk.
    public func reloadStatus() -> ReloadStatus {
        let tokens = currentEntries().count
        return lock.withLock {
            ReloadStatus(error: lastReloadError, failingSince: failingSince, failures: reloadFailures, tokens: tokens)
        }
    }

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

    /// `authorize`, then, for a JWT no static token matches, the OIDC issuers: the identity is `oidc:` + the
    /// token's subject with the role of the first rule its claims match. A refused JWT is logged with the reason
    /// and issuer, never the token.
    public func authenticate(authorization: String?, role needed: Role) async -> Result<Identity, Failure> {
        let result = authorize(authorization: authorization, role: needed)
        guard case .failure(.unknown) = result, let oidc, let token = Self.bearerToken(authorization),
            OIDCVerifier.looksLikeJWT(token)
        else { return result }
        let (verdict, issuer) = await oidc.verify(token)
        switch verdict {
        case .success(let identity):
            guard identity.role.includes(needed) else { return .failure(.forbidden) }
            return .success(identity)
        case .failure(let rejection):
            logger?.info(
                "OIDC token refused",
                metadata: ["oidc.reason": "\(rejection.rawValue)", "oidc.issuer": "\(issuer ?? "unknown")"])
            return .failure(rejection == .noRule ? .forbidden : .unknown)
        }
    }

    /// The identity of the static token whose SHA-256 is `digest`, as the tokens file says now; nil once it is gone.
    /// A dashboard session keeps only the digest, so a revoked token or a changed role applies to its sessions too.
    public func identity(tokenDigest digest: String) -> Identity? {
        var match: TokenEntry?
        for entry in currentEntries() where TokenHash.constantTimeEqual(entry.sha256, digest) {
            match = entry
        }
        return match.map { Identity(name: $0.name, role: $0.role) }
    }

    /// The SHA-256 of the bearer token in `authorization` when a static token (not an OIDC one) matches it.
    public func staticTokenDigest(authorization: String?) -> String? {
        guard let token = Self.bearerToken(authorization) else { return nil }
        let digest = TokenHash.hex(token)
        return identity(tokenDigest: digest) == nil ? nil : digest
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
                    failingSince = nil
                    logger?.notice("tokens file reloaded", metadata: ["file": "\(path)", "tokens.count": "\(entries.count)"])
                } catch {
                    let error = error as? ConfigError ?? ConfigError(file: path, message: "\(error)")
                    lastReloadError = error
                    if failingSince == nil { failingSince = now() }
                    reloadFailures += 1
                    // Once per version of the file on disk: the stamp is not read again until it changes.
                    logger?.error(
                        "tokens file invalid: the last good list stays in use, its changes (revocations too) have not taken effect",
                        metadata: ["error": "\(error)", "file": "\(path)", "tokens.count": "\(entries.count)"])
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
