import Foundation
import SluiceHTTP
import SluiceKubernetes
import SluiceTestSupport
import Testing

/// A fake credential plugin: each run appends its args to `runs` and its `KUBERNETES_EXEC_INFO` and
/// `PLUGIN_GREETING` to `info`, then answers the first line of `answers` (dropped once used, the last one
/// repeats). A line `FAIL text` writes text (and a second line) on stderr and exits 3.
struct FakePlugin {
    let directory: String
    var path: String { directory + "/fake-plugin" }

    init() throws {
        directory = try makeTemporaryDirectory("exec-plugin")
        let script = """
            #!/bin/sh
            d=$(dirname "$0")
            echo "run $*" >> "$d/runs"
            printf '%s|%s\\n' "$KUBERNETES_EXEC_INFO" "$PLUGIN_GREETING" >> "$d/info"
            line=$(head -n 1 "$d/answers")
            if [ "$(wc -l < "$d/answers")" -gt 1 ]; then
              tail -n +2 "$d/answers" > "$d/answers.next" && mv "$d/answers.next" "$d/answers"
            fi
            case "$line" in
              FAIL*) echo "${line#FAIL }" >&2; echo "a second line nobody needs" >&2; exit 3 ;;
              *) printf '%s\\n' "$line" ;;
            esac

            """
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    }

    /// The answers the next runs give, in order.
    func answer(_ lines: String...) throws {
        try lines.map { $0 + "\n" }.joined().write(toFile: directory + "/answers", atomically: true, encoding: .utf8)
    }

    var runs: Int { lines("runs").count }
    /// Each run's arguments, space-separated.
    var arguments: [String] { lines("runs").map { String($0.dropFirst("run ".count)) } }
    var info: [String] { lines("info") }

    private func lines(_ file: String) -> [String] {
        ((try? String(contentsOfFile: directory + "/" + file, encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
    }

    /// An ExecCredential answer (one line of JSON).
    static func credential(
        token: String? = nil, expires: String? = nil, certificate: String? = nil, key: String? = nil,
        apiVersion: String = ExecCredentialPlugin.v1
    ) -> String {
        var status: [String: Any] = [:]
        if let token { status["token"] = token }
        if let expires { status["expirationTimestamp"] = expires }
        if let certificate { status["clientCertificateData"] = certificate }
        if let key { status["clientKeyData"] = key }
        let object: [String: Any] = ["apiVersion": apiVersion, "kind": "ExecCredential", "status": status]
        return String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }
}

@Suite("kubeconfig exec credential plugins")
struct ExecCredentialTests {
    static let later = "2099-01-01T00:00:00Z"
    static let past = "2020-01-01T00:00:00Z"

    /// A kubeconfig for the simulator whose only user authenticates through `exec` (YAML lines under `exec:`).
    static func kubeconfig(_ sim: KubeSimulator, exec: String) throws -> String {
        let text = """
            apiVersion: v1
            kind: Config
            clusters:
            - name: sim
              cluster: {server: "\(sim.url)", certificate-authority: \(sim.caPath)}
            users:
            - name: plugged
              user:
                exec:
            \(exec.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
            contexts:
            - name: sim
              context: {cluster: sim, user: plugged}
            current-context: sim

            """
        let path = sim.directory + "/exec-kubeconfig"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func client(_ sim: KubeSimulator, _ plugin: FakePlugin, extra: String = "") throws -> KubernetesClient {
        let path = try kubeconfig(
            sim,
            exec: """
                apiVersion: client.authentication.k8s.io/v1
                command: \(plugin.path)
                args: [get-token, --cluster, sim]
                env: [{name: PLUGIN_GREETING, value: hello}]
                provideClusterInfo: true
                interactiveMode: IfAvailable
                """ + extra)
        return KubernetesClient(
            config: try ClusterConfig.fromKubeconfig(paths: [path]), http: try CurlClient(),
            options: .init(requestTimeout: .seconds(5), maxServerAttempts: 1))
    }

    @Test("the plugin's token authenticates and is cached until it expires; the plugin gets args, env and exec info")
    func tokenCached() async throws {
        let sim = try await KubeSimulator()
        let plugin = try FakePlugin()
        try plugin.answer(FakePlugin.credential(token: sim.token("admin"), expires: Self.later))
        let client = try Self.client(sim, plugin)
        #expect(client.config.description.contains("exec credential plugin"))
        #expect(!client.config.description.contains(sim.token("admin")))
        #expect(try await client.leases().list().isEmpty)
        #expect(try await client.leases().list().isEmpty)
        #expect(plugin.runs == 1)
        #expect(plugin.arguments == ["get-token --cluster sim"])
        #expect(try await sim.requests().last?.user == "admin")
        let info = try #require(plugin.info.first)
        #expect(info.hasSuffix("|hello"))
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(info.dropLast("|hello".count).utf8)) as? [String: Any])
        #expect(object["kind"] as? String == "ExecCredential")
        #expect(object["apiVersion"] as? String == ExecCredentialPlugin.v1)
        let spec = try #require(object["spec"] as? [String: Any])
        #expect(spec["interactive"] as? Bool == false)
        let cluster = try #require(spec["cluster"] as? [String: Any])
        #expect(cluster["server"] as? String == sim.url)
        #expect((cluster["certificate-authority-data"] as? String)?.isEmpty == false)
    }

    @Test("an expired token runs the plugin again before the next request")
    func expiredTokenRerunsPlugin() async throws {
        let sim = try await KubeSimulator()
        let plugin = try FakePlugin()
        try plugin.answer(FakePlugin.credential(token: sim.token("admin"), expires: Self.past))
        let client = try Self.client(sim, plugin)
        #expect(try await client.leases().list().isEmpty)
        #expect(try await client.leases().list().isEmpty)
        #expect(plugin.runs == 2)
    }

    @Test("expiry on a virtual clock: cached before expirationTimestamp, run again after it")
    func expiryOnVirtualClock() async throws {
        let plugin = try FakePlugin()
        try plugin.answer(
            FakePlugin.credential(token: "first", expires: "2030-06-01T12:00:00Z"),
            FakePlugin.credential(token: "second", expires: "2030-06-01T13:00:00.5Z"))
        let expiry = try #require(ISO8601DateFormatter().date(from: "2030-06-01T12:00:00Z"))
        let clock = Clocked(expiry.addingTimeInterval(-1))
        let exec = ExecCredentialPlugin(
            KubeConfig.Exec(command: plugin.path), user: "u", now: { clock.value })
        #expect(try await exec.credential().token == "first")
        #expect(try await exec.credential().token == "first")
        #expect(plugin.runs == 1)
        clock.value = expiry.addingTimeInterval(1)
        let second = try await exec.credential()
        #expect(second.token == "second")
        #expect(second.expires == expiry.addingTimeInterval(3600.5))
        #expect(plugin.runs == 2)
    }

    @Test("a 401 runs the plugin again and retries the request once")
    func unauthorizedRefreshes() async throws {
        let sim = try await KubeSimulator()
        let plugin = try FakePlugin()
        try plugin.answer(
            FakePlugin.credential(token: "revoked-token", expires: Self.later),
            FakePlugin.credential(token: sim.token("admin"), expires: Self.later))
        let client = try Self.client(sim, plugin)
        #expect(try await client.leases().list().isEmpty)
        #expect(plugin.runs == 2)
        let statuses = try await sim.requests().filter { $0.path.contains("leases") }.map(\.status)
        #expect(statuses == [401, 200])
        // The new token is cached: no third run.
        #expect(try await client.leases().list().isEmpty)
        #expect(plugin.runs == 2)
    }

    @Test("a plugin that keeps handing out a rejected token: unauthorized after one retry")
    func unauthorizedTwice() async throws {
        let sim = try await KubeSimulator()
        let plugin = try FakePlugin()
        try plugin.answer(FakePlugin.credential(token: "revoked-token", expires: Self.later))
        let client = try Self.client(sim, plugin)
        let error = await #expect(throws: KubernetesError.self) { try await client.leases().list() }
        #expect(error?.code == .unauthorized)
        #expect(plugin.runs == 2)
        #expect(error.map { "\($0)".contains("revoked-token") } == false)
    }

    @Test("a client certificate from the plugin authenticates")
    func clientCertificate() async throws {
        let sim = try await KubeSimulator()
        let plugin = try FakePlugin()
        try plugin.answer(
            FakePlugin.credential(
                certificate: try String(contentsOfFile: sim.clientCertificatePath, encoding: .utf8),
                key: try String(contentsOfFile: sim.clientKeyPath, encoding: .utf8)))
        let client = try Self.client(sim, plugin)
        #expect(try await client.leases().list().isEmpty)
        #expect(try await sim.requests().last?.user == KubeSimulator.certificateUser)
    }

    static let secret = "s3cret-token-value"

    @Test(
        "a failing plugin gives a clear error naming it, never the token",
        arguments: [
            ("FAIL error: the SSO session has expired", "exited with status 3: error: the SSO session has expired"),
            ("{\"token\": \"\(secret)\"", "is not an ExecCredential JSON object"),
            (
                FakePlugin.credential(token: secret, apiVersion: ExecCredentialPlugin.v1beta1),
                "apiVersion \"client.authentication.k8s.io/v1beta1\", expected ExecCredential"
            ),
            (FakePlugin.credential(expires: later), "neither status.token nor a client certificate"),
            (FakePlugin.credential(token: secret, expires: "tomorrow"), "is not an RFC 3339 time"),
        ])
    func pluginFailures(answer: String, message: String) async throws {
        let sim = try await KubeSimulator()
        let plugin = try FakePlugin()
        try plugin.answer(answer)
        let client = try Self.client(sim, plugin)
        let error = await #expect(throws: KubernetesError.self) { try await client.leases().list() }
        let text = error.map { "\($0)" } ?? ""
        #expect(error?.code == .credentials)
        #expect(text.contains("exec credential plugin \(plugin.path) (user \"plugged\")"), "\(text)")
        #expect(text.contains(message), "\(text)")
        #expect(!text.contains(Self.secret))
        #expect(!text.contains("second line"))
        #expect(try await sim.requests().filter { $0.path.contains("leases") }.isEmpty)
    }

    @Test("a missing plugin says where it was looked for and how to install it")
    func missingPlugin() async throws {
        let sim = try await KubeSimulator()
        let path = try Self.kubeconfig(
            sim,
            exec: """
                apiVersion: client.authentication.k8s.io/v1beta1
                command: no-such-auth-plugin
                installHint: install no-such-auth-plugin from example.com
                """)
        let client = KubernetesClient(config: try ClusterConfig.fromKubeconfig(paths: [path]), http: try CurlClient())
        let error = await #expect(throws: KubernetesError.self) { try await client.leases().list() }
        let text = error.map { "\($0)" } ?? ""
        #expect(error?.code == .configuration)
        #expect(text.contains("exec credential plugin no-such-auth-plugin (user \"plugged\")"), "\(text)")
        #expect(text.contains("is not on PATH"), "\(text)")
        #expect(text.contains("install no-such-auth-plugin from example.com"), "\(text)")
    }

    @Test("EKS (aws eks get-token) and GKE (gke-gcloud-auth-plugin) kubeconfigs parse")
    func cloudKubeconfigs() throws {
        let text = """
            apiVersion: v1
            kind: Config
            clusters:
            - name: eks
              cluster: {server: "https://ABC.gr7.eu-west-1.eks.amazonaws.com", certificate-authority-data: \
            \(KubeConfigTests.pem.base64EncodedString())}
            - name: gke
              cluster: {server: "https://34.1.2.3", certificate-authority-data: \
            \(KubeConfigTests.pem.base64EncodedString())}
            users:
            - name: arn:aws:eks:eu-west-1:123456789012:cluster/prod
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1beta1
                  command: aws
                  args: [--region, eu-west-1, eks, get-token, --cluster-name, prod, --output, json]
                  env:
                  - name: AWS_PROFILE
                    value: prod
                  interactiveMode: IfAvailable
                  provideClusterInfo: false
            - name: gke_proj_europe-west1_prod
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1beta1
                  command: gke-gcloud-auth-plugin
                  installHint: Install gke-gcloud-auth-plugin for use with kubectl by following
                    https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin
                  provideClusterInfo: true
                  interactiveMode: IfAvailable
            contexts:
            - name: eks
              context: {cluster: eks, user: "arn:aws:eks:eu-west-1:123456789012:cluster/prod"}
            - name: gke
              context: {cluster: gke, user: gke_proj_europe-west1_prod, namespace: shop}
            current-context: eks
            """
        let config = try KubeConfig.parse(text, file: "/tmp/cloud.yaml")
        guard case .exec(let eks) = try config.clusterConfig(context: "eks").credentials else {
            Issue.record("EKS: no exec credentials")
            return
        }
        #expect(eks.spec.command == "aws")
        #expect(eks.spec.args == ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "prod", "--output", "json"])
        #expect(eks.spec.env == [KubeConfig.EnvVar(name: "AWS_PROFILE", value: "prod")])
        #expect(eks.spec.apiVersion == ExecCredentialPlugin.v1beta1)
        #expect(!eks.spec.provideClusterInfo)
        let gkeConfig = try config.clusterConfig(context: "gke")
        guard case .exec(let gke) = gkeConfig.credentials else {
            Issue.record("GKE: no exec credentials")
            return
        }
        #expect(gke.spec.command == "gke-gcloud-auth-plugin")
        #expect(gke.spec.provideClusterInfo)
        #expect(gke.spec.installHint?.contains("cluster-access-for-kubectl") == true)
        #expect(gkeConfig.namespace == "shop")
    }

    @Test(
        "unusable exec entries say what and where",
        arguments: [
            ("{apiVersion: client.authentication.k8s.io/v1}", "exec.command is missing"),
            (
                "{apiVersion: client.authentication.k8s.io/v1alpha1, command: x}",
                "exec.apiVersion \"client.authentication.k8s.io/v1alpha1\" is not supported"
            ),
            ("{command: x}", "exec.apiVersion is missing"),
            ("{apiVersion: client.authentication.k8s.io/v1, command: x, interactiveMode: Always}", "without a terminal"),
            ("{apiVersion: client.authentication.k8s.io/v1, command: x, env: [{name: A}]}", "exec.env[0] needs a name"),
        ])
    func badExecEntries(exec: String, message: String) throws {
        let text = """
            users:
            - name: p
              user: {exec: \(exec)}
            """
        let error = #expect(throws: KubernetesError.self) { try KubeConfig.parse(text, file: "/k/config") }
        #expect(error?.code == .configuration)
        #expect(error?.message.contains("kubeconfig /k/config: users[0] (p)") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }
}

/// A date a test moves by hand.
final class Clocked: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Date
    init(_ date: Date) { stored = date }
    var value: Date {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
