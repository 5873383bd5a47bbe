import Crypto
import Foundation

/// AWS Signature Version 4 (header form) for one request, as AWS documents it for non-S3 services.
public struct SigV4Signer: Sendable {
    public var credentials: AWSCredentials
    public var region: String
    public var service: String

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The headers to add to the request: `X-Amz-Date`, `X-Amz-Security-Token` (temporary credentials) and
    /// `Authorization`. Signed: host, content-type and every x-amz-* header.
    public func headers(
        method: String, url: String, headers: [(name: String, value: String)], body: Data?, date: Date
    ) throws -> [(name: String, value: String)] {
        guard let components = URLComponents(string: url), let host = components.host else {
            throw HTTPError(code: .invalidRequest, url: url, message: "cannot sign: the URL has no host")
        }
        let amzDate = Self.timestamp(date)
        let day = String(amzDate.prefix(8))
        var added: [(name: String, value: String)] = [("X-Amz-Date", amzDate)]
        if let token = credentials.sessionToken { added.append(("X-Amz-Security-Token", token)) }

        let defaultPort = components.scheme?.lowercased() == "https" ? 443 : 80
        let hostHeader = components.port.map { $0 == defaultPort ? host : "\(host):\($0)" } ?? host
        var signed: [String: String] = ["host": hostHeader]
        for (name, value) in headers + added {
            let lower = name.lowercased()
            guard lower == "content-type" || lower.hasPrefix("x-amz-") else { continue }
            let trimmed = value.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true)
                .joined(separator: " ")
            signed[lower] = signed[lower].map { $0 + "," + trimmed } ?? trimmed
        }
        let names = signed.keys.sorted()
        let signedHeaders = names.joined(separator: ";")
        let canonicalRequest = [
            method.uppercased(),
            Self.canonicalPath(components.percentEncodedPath),
            Self.canonicalQuery(components.percentEncodedQuery),
            names.map { "\($0):\(signed[$0]!)\n" }.joined(),
            signedHeaders,
            Self.hex(SHA256.hash(data: body ?? Data())),
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n" + Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8)))
        // The signing key: HMAC-SHA256 chained over the date, region, service and "aws4_request" (swift-crypto).
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        added.append(("Authorization",
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"))
        return added
    }

    /// Lower-case hex, as SigV4 writes digests and signatures.
    static func hex<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes { out += [digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]] }
        return String(decoding: out, as: UTF8.self)
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    /// RFC 3986 encoding with only unreserved characters left as they are.
    static func encode(_ value: String, keepSlash: Bool = false) -> String {
        var out = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// Non-S3 services encode the (already encoded) path once more, as botocore does.
    static func canonicalPath(_ path: String) -> String {
        path.isEmpty ? "/" : encode(path, keepSlash: true)
    }

    static func canonicalQuery(_ query: String?) -> String {
        guard let query, !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&").map { item -> (String, String) in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (s: Substring) in (s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s)) }
            return (encode(decode(parts[0])), parts.count > 1 ? encode(decode(parts[1])) : "")
        }
        return pairs.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }.map { "\($0)=\($1)" }.joined(separator: "&")
    }
}
