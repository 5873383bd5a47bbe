import ArgumentParser
import Foundation
import SluiceAPI

/// `sluice token hash`: the SHA-256 line for the tokens file, from a token on standard input.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Helpers for API tokens.", subcommands: [Hash.self])

    struct Hash: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the SHA-256 of the token read from standard input, for the tokens file.",
            discussion: "Example: head -c 32 /dev/urandom | base64 | tee token | sluice token hash")

        func run() async throws {
            let input = FileHandle.standardInput.readDataToEndOfFile()
            let token = String(decoding: input, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw ValidationError("no token on standard input") }
            print(TokenHash.hex(token))
        }
    }
}
