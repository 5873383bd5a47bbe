import Foundation
import SluiceHTTP
import Testing

@Suite("SigV4Signer against AWS's published examples and botocore")
struct SigV4SignerTests {
    let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    let date = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z

    func authorization(
        _ method: String, _ url: String, headers: [(name: String, value: String)] = [], body: Data? = nil,
        service: String, token: String? = nil
    ) throws -> [(name: String, value: String)] {
        var credentials = credentials
        credentials.sessionToken = token
        return try SigV4Signer(credentials: credentials, region: "us-east-1", service: service)
            .headers(method: method, url: url, headers: headers, body: body, date: date)
    }

    func value(_ name: String, _ headers: [(name: String, value: String)]) -> String? {
        headers.first { $0.name == name }?.value
    }

    @Test("expected signatures", arguments: [
        // AWS's sigv4 test suite "get-vanilla".
        ("GET", "https://example.amazonaws.com/", "", "", "service", "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        // The IAM ListUsers example of AWS's documentation.
        ("GET", "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
            "application/x-www-form-urlencoded; charset=utf-8", "", "iam", "content-type;host;x-amz-date",
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"),
        // botocore 1.x SigV4Auth: unsorted and repeated query keys, an encoded path.
        ("GET", "https://example.amazonaws.com/a%20b/c?b=2&a=1&a=0&c=x%2Fy", "", "", "service", "host;x-amz-date",
            "ac0fce94f57936f68f2e74eeec6c2177ed3a4b7dcc53f7366d4176fc1cbffe06"),
    ])
    func vectors(
        method: String, url: String, contentType: String, body: String, service: String, signedHeaders: String,
        signature: String
    ) throws {
        let headers = contentType.isEmpty ? [] : [(name: "Content-Type", value: contentType)]
        let added = try authorization(method, url, headers: headers, body: Data(body.utf8), service: service)
        #expect(value("X-Amz-Date", added) == "20150830T123600Z")
        #expect(value("Authorization", added) == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/\(service)/"
            + "aws4_request, SignedHeaders=\(signedHeaders), Signature=\(signature)")
    }

    @Test("a POST body, a port and a session token are signed as botocore signs them")
    func postWithToken() throws {
        let added = try authorization(
            "POST", "http://127.0.0.1:8080/", headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
            body: Data("Action=DescribeLoadBalancers&Version=2015-12-01".utf8), service: "elasticloadbalancing",
            token: "SESSIONTOKEN")
        #expect(value("X-Amz-Security-Token", added) == "SESSIONTOKEN")
        #expect(value("Authorization", added)?.hasSuffix("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
            + "Signature=323eab0c24c18924ecb4d0e179a0f6bccccaed0e058c25ef9156a3eb6ba77346") == true)
    }
}
