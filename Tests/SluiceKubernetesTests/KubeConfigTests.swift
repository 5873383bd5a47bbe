import Foundation
import SluiceHTTP
import SluiceKubernetes
import SluiceTestSupport
import Testing

@Suite("kubeconfig and in-cluster configuration")
struct KubeConfigTests {
    static let pem = Data("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".utf8)

    static let first = """
        apiVersion: v1
        kind: Config
        current-context: prod
        clusters:
        - name: prod
          cluster: {server: "https://prod.example:6443", certificate-authority: certs/ca.pem}
        - name: lab
          cluster: {server: "https://lab.example:6443", insecure-skip-tls-verify: true}
        users:
        - name: ci
          user: {token: first-file-token}
        - name: robot
          user: {tokenFile: tokens/robot}
        contexts:
        - name: prod
          context: {cluster: prod, user: ci, namespace: shop}
        - name: lab
          context: {cluster: lab, user: robot}
        """

    static let second = """
        apiVersion: v1
        kind: Config
        current-context: other
        clusters:
        - name: prod
          cluster: {server: "https://shadowed.example"}
        - name: data
          cluster: {server: "https://data.example", certificate-authority-data: \(pem.base64EncodedString())}
        users:
        - name: ci
          user: {token: shadowed}
        - name: certs
          user:
            client-certificate-data: \(pem.base64EncodedString())
            client-key-data: \(pem.base64EncodedString())
        - name: certfiles
          user: {client-certificate: /etc/c.pem, client-key: k.pem}
        - name: plugin
          user:
            exec: {apiVersion: client.authentication.k8s.io/v1, command: gke-gcloud-auth-plugin}
        - name: halfcert
          user: {client-certificate: /etc/c.pem}
        contexts:
        - name: data
          context: {cluster: data, user: certs}
        - name: files
          context: {cluster: data, user: certfiles}
        - name: plugin
          context: {cluster: data, user: plugin}
        - name: half
          context: {cluster: data, user: halfcert}
        - name: dangling
          context: {cluster: nowhere, user: ci}
        """

    /// Writes both files into a fresh folder; returns their paths.
    static func files() throws -> [String] {
        let dir = try makeTemporaryDirectory("kubeconfig")
        try first.write(toFile: dir + "/a.yaml", atomically: true, encoding: .utf8)
        try second.write(toFile: dir + "/b.yaml", atomically: true, encoding: .utf8)
        return [dir + "/a.yaml", dir + "/missing.yaml", dir + "/b.yaml"]
    }

    @Test("several files merge; the first definition and current-context win; relative paths follow the file")
    func merge() throws {
        let paths = try Self.files()
        let config = try KubeConfig.load(paths: paths)
        #expect(config.currentContext == "prod")
        let prod = try config.clusterConfig()
        #expect(prod.server == "https://prod.example:6443")
        #expect(prod.namespace == "shop")
        #expect(prod.tls.ca == .file(URL(fileURLWithPath: paths[0]).deletingLastPathComponent().path + "/certs/ca.pem"))
        #expect(prod.tls.insecureSkipVerify == false)
        guard case .token(let token) = prod.credentials else {
            Issue.record("expected a token")
            return
        }
        #expect(token == "first-file-token")
        #expect(!prod.description.contains("first-file-token"), "the description never shows the token")
    }

    @Test(
        "explicit contexts",
        arguments: [
            ("lab", "https://lab.example:6443", "default", "tokenFile", true),
            ("data", "https://data.example", "default", "client certificate data", false),
            ("files", "https://data.example", "default", "client certificate files", false),
        ])
    func contexts(context: String, server: String, namespace: String, auth: String, insecure: Bool) throws {
        let paths = try Self.files()
        let config = try KubeConfig.load(paths: paths).clusterConfig(context: context)
        #expect(config.server == server)
        #expect(config.namespace == namespace)
        #expect(config.tls.insecureSkipVerify == insecure)
        switch auth {
        case "tokenFile":
            guard case .tokenFile(let file) = config.credentials else {
                Issue.record("no token file")
                return
            }
            #expect(file.path.hasSuffix("/tokens/robot"))
        case "client certificate data":
            #expect(config.tls.ca == .pem(Self.pem))
            #expect(config.tls.clientCertificate == .pem(Self.pem))
            #expect(config.tls.clientKey == .pem(Self.pem))
        default:
            #expect(config.tls.clientCertificate == .file("/etc/c.pem"))
            #expect(
                config.tls.clientKey
                    == .file(URL(fileURLWithPath: paths[2]).deletingLastPathComponent().path + "/k.pem"))
        }
    }

    @Test(
        "unusable contexts say what and where",
        arguments: [
            ("half", "needs both client-certificate and client-key"),
            ("dangling", "names cluster \"nowhere\", which is not defined"),
            ("nope", "context \"nope\" not found"),
        ])
    func errors(context: String, message: String) throws {
        let paths = try Self.files()
        let error = #expect(throws: KubernetesError.self) {
            try KubeConfig.load(paths: paths).clusterConfig(context: context)
        }
        #expect(error?.code == .configuration)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("b.yaml") == true)
    }

    @Test("KUBECONFIG lists several files; without it ~/.kube/config")
    func defaultPaths() {
        #expect(KubeConfig.defaultPaths(environment: ["KUBECONFIG": "/a:/b", "HOME": "/h"]) == ["/a", "/b"])
        #expect(KubeConfig.defaultPaths(environment: ["HOME": "/h"]) == ["/h/.kube/config"])
    }

    @Test("bad YAML and missing files are configuration errors naming the file")
    func badFiles() throws {
        let dir = try makeTemporaryDirectory("kubeconfig")
        try "clusters: [unclosed".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let bad = #expect(throws: KubernetesError.self) { try KubeConfig.load(paths: [dir + "/bad.yaml"]) }
        #expect(bad?.message.contains("bad.yaml: not valid YAML") == true)
        let none = #expect(throws: KubernetesError.self) { try KubeConfig.load(paths: [dir + "/none.yaml"]) }
        #expect(none?.message.contains("no kubeconfig found") == true)
    }

    @Test("in-cluster: service host and port, ca.crt, namespace, and a token that is re-read when it rotates")
    func inCluster() throws {
        let dir = try makeTemporaryDirectory("serviceaccount")
        try "token-one\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        try "ca".write(toFile: dir + "/ca.crt", atomically: true, encoding: .utf8)
        try "shop".write(toFile: dir + "/namespace", atomically: true, encoding: .utf8)
        let env = ["KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        let config = try ClusterConfig.inCluster(environment: env, directory: dir)
        #expect(config.server == "https://10.0.0.1:443")
        #expect(config.namespace == "shop")
        #expect(config.tls.ca == .file(dir + "/ca.crt"))
        guard case .tokenFile(let file) = config.credentials else {
            Issue.record("no token file")
            return
        }
        #expect(try file.token() == "token-one")
        try "token-two-rotated\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        #expect(try file.token() == "token-two-rotated")
        let v6 = try ClusterConfig.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"], directory: dir)
        #expect(v6.server == "https://[fd00::1]:443")
        let outside = #expect(throws: KubernetesError.self) {
            try ClusterConfig.inCluster(environment: [:], directory: dir)
        }
        #expect(outside?.message.contains("KUBERNETES_SERVICE_HOST") == true)
    }
}
