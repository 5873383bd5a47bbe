import Foundation
import SluiceHTTP
import SluiceTestSupport
import Testing

@Suite("SigV4 against moto with signature checking on")
struct SigV4MotoTests {
    @Test("signed calls succeed; a wrong secret fails with SignatureDoesNotMatch")
    func signatures() async throws {
        let moto = try await MotoServer()
        defer { moto.stop() }
        let credentials = try await moto.enableAuth()
        let elbv2 = "elasticloadbalancing"
        let fixture = try await moto.createLoadBalancer(credentials: credentials, weights: (90, 10))
        let listeners = try await moto.call(elbv2, version: "2015-12-01", [
            ("Action", "DescribeListeners"), ("LoadBalancerArn", fixture.loadBalancerARN),
        ], credentials: credentials)
        #expect(xmlValues("Weight", in: listeners) == ["90", "10"])

        var wrong = credentials
        wrong.secretAccessKey += "x"
        let rejected = try await moto.send(elbv2, version: "2015-12-01", [("Action", "DescribeLoadBalancers")],
            credentials: wrong)
        #expect(rejected.status == 403)
        #expect(String(decoding: rejected.body, as: UTF8.self).contains("SignatureDoesNotMatch"))

        let unknown = AWSCredentials(accessKeyID: "AKIAUNKNOWNKEY000000", secretAccessKey: credentials.secretAccessKey)
        let unknownAnswer = try await moto.send(elbv2, version: "2015-12-01", [("Action", "DescribeLoadBalancers")],
            credentials: unknown)
        #expect(unknownAnswer.status == 403)
    }
}
