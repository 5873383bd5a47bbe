import Foundation
import SluiceHTTP

/// A moto server (`.tools/venv/bin/moto_server`) on a free 127.0.0.1 port: AWS ELBv2, EC2, IAM and CloudWatch for
/// tests. Requests go through `CurlClient` signed with SigV4. Call `enableAuth()` to make moto check signatures.
public final class MotoServer: @unchecked Sendable {
    public let port: Int
    public let directory: String
    public let process: ManagedProcess
    public let client: CurlClient
    /// The region every call is signed for.
    public let region = "us-east-1"
    /// Credentials moto accepts before `enableAuth()`; afterwards use the ones it returns.
    public static let anyCredentials = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "any")

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Starts moto and waits until it answers HTTP.
    public init() async throws {
        directory = try makeTemporaryDirectory("sluice-moto")
        port = try freePort()
        client = try CurlClient()
        process = try ManagedProcess(
            name: "moto", executable: toolPath("moto_server"), arguments: ["-H", "127.0.0.1", "-p", String(port)],
            directory: directory, installHint: "scripts/setup (pip install 'moto[server]' into .tools/venv)")
        let process = process, client = client, endpoint = endpoint
        do {
            try await waitUntil("moto on port \(port)", timeout: .seconds(30), interval: .milliseconds(100)) {
                guard process.isRunning else { throw SupportError("moto exited: \(process.logTail())") }
                let response = try await client.execute(HTTPRequest(
                    url: endpoint + "/moto-api/data.json", timeout: .seconds(2), connectTimeout: .seconds(1),
                    retry: .none))
                return response.status == 200
            }
        } catch {
            stop()
            throw error
        }
    }

    /// Stops moto. SIGKILL: a child of the test runner may start with SIGTERM blocked, and moto keeps no state.
    public func stop() { process.stop(signal: SIGKILL) }

    deinit { stop() }

    /// Turns signature checking on and returns credentials of an IAM user allowed everything. moto then answers a
    /// wrong secret with `SignatureDoesNotMatch` and an unknown key with `InvalidClientTokenId`.
    public func enableAuth() async throws -> AWSCredentials {
        // The body is how many more calls moto lets through unchecked: the three IAM calls below.
        let reset = try await client.execute(HTTPRequest(
            method: "POST", url: endpoint + "/moto-api/reset-auth", headers: [("Content-Type", "text/plain")],
            body: Data("3".utf8), timeout: .seconds(30)))
        guard reset.status == 200 else { throw SupportError("moto reset-auth answered \(reset.status)") }
        let iam = { (parameters: [(String, String)]) in
            try await self.call("iam", version: "2010-05-08", parameters, credentials: Self.anyCredentials)
        }
        _ = try await iam([("Action", "CreateUser"), ("UserName", "sluice")])
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        _ = try await iam([
            ("Action", "PutUserPolicy"), ("UserName", "sluice"), ("PolicyName", "all"), ("PolicyDocument", policy),
        ])
        let key = try await iam([("Action", "CreateAccessKey"), ("UserName", "sluice")])
        guard let id = xmlValues("AccessKeyId", in: key).first,
            let secret = xmlValues("SecretAccessKey", in: key).first
        else { throw SupportError("moto CreateAccessKey answer has no key: \(key)") }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret)
    }

    /// One AWS query-protocol call (form POST) signed for `service`; returns the body, throws on a non-2xx answer.
    @discardableResult
    public func call(
        _ service: String, version: String, _ parameters: [(String, String)], credentials: AWSCredentials
    ) async throws -> String {
        let response = try await send(service, version: version, parameters, credentials: credentials)
        let body = String(decoding: response.body, as: UTF8.self)
        guard (200..<300).contains(response.status) else {
            throw SupportError("moto \(service) \(parameters.first?.1 ?? "") answered \(response.status): \(body)")
        }
        return body
    }

    /// Like `call` but returns the raw response, for tests of failures.
    public func send(
        _ service: String, version: String, _ parameters: [(String, String)], credentials: AWSCredentials
    ) async throws -> HTTPResponse {
        let form = (parameters + [("Version", version)]).map { "\(formEncode($0))=\(formEncode($1))" }
            .joined(separator: "&")
        return try await client.execute(HTTPRequest(
            method: "POST", url: endpoint + "/",
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], body: Data(form.utf8),
            timeout: .seconds(60), auth: .awsSigV4(credentials, region: region, service: service), retry: .none))
    }

    /// An application load balancer with two target groups and an HTTP listener forwarding to both, as a traffic
    /// router test needs: a VPC and two subnets first, as moto requires.
    public func createLoadBalancer(
        name: String = "sluice", credentials: AWSCredentials, weights: (stable: Int, canary: Int) = (100, 0)
    ) async throws -> LoadBalancerFixture {
        let ec2 = { (parameters: [(String, String)]) in
            try await self.call("ec2", version: "2016-11-15", parameters, credentials: credentials)
        }
        let elb = { (parameters: [(String, String)]) in
            try await self.call("elasticloadbalancing", version: "2015-12-01", parameters, credentials: credentials)
        }
        let vpc = try first("vpcId", in: await ec2([("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")]))
        var subnets: [String] = []
        for (index, zone) in ["a", "b"].enumerated() {
            subnets.append(try first("subnetId", in: await ec2([
                ("Action", "CreateSubnet"), ("VpcId", vpc), ("CidrBlock", "10.0.\(index).0/24"),
                ("AvailabilityZone", region + zone),
            ])))
        }
        let loadBalancer = try first("LoadBalancerArn", in: await elb([
            ("Action", "CreateLoadBalancer"), ("Name", name), ("Subnets.member.1", subnets[0]),
            ("Subnets.member.2", subnets[1]),
        ]))
        var groups: [String] = []
        for role in ["stable", "canary"] {
            groups.append(try first("TargetGroupArn", in: await elb([
                ("Action", "CreateTargetGroup"), ("Name", "\(name)-\(role)"), ("Protocol", "HTTP"), ("Port", "80"),
                ("VpcId", vpc),
            ])))
        }
        let action = "DefaultActions.member.1"
        let listener = try first("ListenerArn", in: await elb([
            ("Action", "CreateListener"), ("LoadBalancerArn", loadBalancer), ("Protocol", "HTTP"), ("Port", "80"),
            ("\(action).Type", "forward"),
            ("\(action).ForwardConfig.TargetGroups.member.1.TargetGroupArn", groups[0]),
            ("\(action).ForwardConfig.TargetGroups.member.1.Weight", String(weights.stable)),
            ("\(action).ForwardConfig.TargetGroups.member.2.TargetGroupArn", groups[1]),
            ("\(action).ForwardConfig.TargetGroups.member.2.Weight", String(weights.canary)),
        ]))
        return LoadBalancerFixture(
            vpcID: vpc, subnetIDs: subnets, loadBalancerARN: loadBalancer, stableTargetGroupARN: groups[0],
            canaryTargetGroupARN: groups[1], listenerARN: listener)
    }

    /// Runs an EC2 instance in the fixture's first subnet and registers it in `targetGroupARN`: moto reports a
    /// running registered instance healthy, so the router's own view of that group is "up". Returns its id.
    @discardableResult
    public func registerRunningInstance(
        in targetGroupARN: String, of fixture: LoadBalancerFixture, credentials: AWSCredentials
    ) async throws -> String {
        let run = try await call(
            "ec2", version: "2016-11-15",
            [
                ("Action", "RunInstances"), ("ImageId", "ami-03cf127a"), ("MinCount", "1"), ("MaxCount", "1"),
                ("InstanceType", "t3.micro"), ("SubnetId", fixture.subnetIDs[0]),
            ], credentials: credentials)
        let instance = try first("instanceId", in: run)
        try await call(
            "elasticloadbalancing", version: "2015-12-01",
            [("Action", "RegisterTargets"), ("TargetGroupArn", targetGroupARN), ("Targets.member.1.Id", instance)],
            credentials: credentials)
        return instance
    }

    private func first(_ tag: String, in xml: String) throws -> String {
        guard let value = xmlValues(tag, in: xml).first else { throw SupportError("moto answer has no <\(tag)>: \(xml)") }
        return value
    }
}

/// What `MotoServer.createLoadBalancer` made.
public struct LoadBalancerFixture: Sendable {
    public var vpcID: String
    public var subnetIDs: [String]
    public var loadBalancerARN: String
    public var stableTargetGroupARN: String
    public var canaryTargetGroupARN: String
    public var listenerARN: String
}

/// The text of every `<tag>...</tag>` in `xml`, in order (AWS query answers are simple enough for this).
public func xmlValues(_ tag: String, in xml: String) -> [String] {
    var values: [String] = []
    var rest = xml[...]
    while let open = rest.range(of: "<\(tag)>"), let close = rest[open.upperBound...].range(of: "</\(tag)>") {
        values.append(String(rest[open.upperBound..<close.lowerBound]))
        rest = rest[close.upperBound...]
    }
    return values
}

/// `application/x-www-form-urlencoded` encoding of one name or value (RFC 3986 unreserved kept as is).
public func formEncode(_ value: String) -> String {
    var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)...Unicode.Scalar(127)))
    allowed.insert(charactersIn: "-._~")
    return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
}
