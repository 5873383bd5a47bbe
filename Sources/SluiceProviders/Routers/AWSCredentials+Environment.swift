import Foundation
import SluiceHTTP

extension AWSCredentials {
    /// Credentials the way the AWS tools find them: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN` in `environment`; else the profile `AWS_PROFILE` (or `default`) of the shared
    /// credentials file (`AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/credentials`). Errors name the file
    /// and profile, never a secret.
    public static func resolve(environment: [String: String]) throws -> AWSCredentials {
        let who = "aws credentials"
        let keyID = environment["AWS_ACCESS_KEY_ID"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = environment["AWS_SECRET_ACCESS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        switch (keyID, secret) {
        case (let keyID?, let secret?):
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return AWSCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token)
        case (nil, .some):
            throw ProviderError(
                .invalidConfiguration, provider: who, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
        case (.some, nil):
            throw ProviderError(
                .invalidConfiguration, provider: who, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
        case (nil, nil):
            break
        }
        let path: String
        if let file = environment["AWS_SHARED_CREDENTIALS_FILE"], !file.isEmpty {
            path = file
        } else if let home = environment["HOME"], !home.isEmpty {
            path = home + "/.aws/credentials"
        } else {
            throw ProviderError(
                .invalidConfiguration, provider: who,
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE")
        }
        let profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ProviderError(
                .invalidConfiguration, provider: who,
                "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set and \(path) cannot be read"
            )
        }
        return try fromCredentialsFile(String(decoding: data, as: UTF8.self), profile: profile, path: path)
    }

    /// The profile `profile` of a shared credentials file (INI: `[name]`, `key = value`, `#`/`;` comments).
    static func fromCredentialsFile(_ text: String, profile: String, path: String) throws -> AWSCredentials {
        let who = "aws credentials"
        var sections: [String: [String: String]] = [:]
        var current: String?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                // ~/.aws/config spells profiles `[profile NAME]`; accept it here too.
                current =
                    name.hasPrefix("profile ") ? String(name.dropFirst(8)).trimmingCharacters(in: .whitespaces) : name
                sections[current!, default: [:]] = sections[current!] ?? [:]
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[current]?[key] = value
        }
        guard let section = sections[profile] else {
            throw ProviderError(.invalidConfiguration, provider: who, "profile '\(profile)' not found in \(path)")
        }
        guard let keyID = section["aws_access_key_id"], !keyID.isEmpty else {
            throw ProviderError(
                .invalidConfiguration, provider: who, "profile '\(profile)' in \(path) has no aws_access_key_id")
        }
        guard let secret = section["aws_secret_access_key"], !secret.isEmpty else {
            throw ProviderError(
                .invalidConfiguration, provider: who, "profile '\(profile)' in \(path) has no aws_secret_access_key")
        }
        let token = section["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token)
    }
}
