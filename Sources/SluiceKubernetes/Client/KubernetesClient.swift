import Foundation
import SluiceCore
import SluiceHTTP

/// A typed client of the Kubernetes API for the resources Sluice uses. Writes are merge patches with a
/// `resourceVersion` precondition (fields Sluice does not model are never sent, so never lost); a 409 re-reads
/// and retries a bounded number of times; a 429 waits as `Retry-After` says; every request has a timeout.
/// The bearer token is sent only in the Authorization header and appears in no error or description.
public final class KubernetesClient: Sendable {
    /// Timeouts and retry bounds.
    public struct Options: Sendable {
        /// Deadline of each HTTP request.
        public var requestTimeout: Duration
        public var connectTimeout: Duration
        /// Read-modify-write attempts when the object changed under us (409 Conflict).
        public var maxConflictAttempts: Int
        /// Attempts when the server answers 429, each after its `Retry-After`.
        public var maxThrottleAttempts: Int
        /// The longest `Retry-After` honoured; a longer one is cut to this.
        public var maxRetryAfter: Duration
        /// Attempts of an idempotent request after a 5xx answer or a transport failure (timeout, refused).
        public var maxServerAttempts: Int
        /// Backoff before the first retry after a 5xx or transport failure; doubles each time.
        public var serverRetryDelay: Duration
        public var userAgent: String

        public init(
            requestTimeout: Duration = .seconds(10), connectTimeout: Duration = .seconds(5),
            maxConflictAttempts: Int = 5,
            maxThrottleAttempts: Int = 5, maxRetryAfter: Duration = .seconds(30), maxServerAttempts: Int = 3,
            serverRetryDelay: Duration = .milliseconds(200), userAgent: String = "sluice"
        ) {
            self.requestTimeout = requestTimeout
            self.connectTimeout = connectTimeout
            self.maxConflictAttempts = maxConflictAttempts
            self.maxThrottleAttempts = maxThrottleAttempts
            self.maxRetryAfter = maxRetryAfter
            self.maxServerAttempts = maxServerAttempts
            self.serverRetryDelay = serverRetryDelay
            self.userAgent = userAgent
        }
    }

    public let config: ClusterConfig
    public let options: Options
    private let http: any HTTPClient

    public init(config: ClusterConfig, http: any HTTPClient, options: Options = .init()) {
        self.config = config
        self.http = http
        self.options = options
    }

    /// The namespace of the kubeconfig context or of the pod.
    public var defaultNamespace: String { config.namespace }

    // MARK: typed handles

    /// Deployments in `namespace` (default: the config's).
    public func deployments(_ namespace: String? = nil) -> ResourceClient<Deployment> { resource(namespace) }
    public func services(_ namespace: String? = nil) -> ResourceClient<Service> { resource(namespace) }
    public func httpRoutes(_ namespace: String? = nil) -> ResourceClient<HTTPRoute> { resource(namespace) }
    public func ingresses(_ namespace: String? = nil) -> ResourceClient<Ingress> { resource(namespace) }
    public func events(_ namespace: String? = nil) -> ResourceClient<KubernetesEvent> { resource(namespace) }
    public func leases(_ namespace: String? = nil) -> ResourceClient<Lease> { resource(namespace) }

    /// Objects of `T` in `namespace` (default: the config's).
    public func resource<T: KubernetesResource>(_ namespace: String? = nil, _ type: T.Type = T.self) -> ResourceClient<
        T
    > {
        ResourceClient(client: self, namespace: namespace ?? config.namespace)
    }

    // MARK: calls

    func get<T: KubernetesResource>(_ type: T.Type, namespace: String, name: String) async throws -> T {
        let path = T.resource.path(namespace: namespace, name: name)
        let data = try await send("GET", path, operation: operation("GET", T.self, namespace, name))
        return try decode(T.self, data, path)
    }

    func list<T: KubernetesResource>(
        _ type: T.Type, namespace: String, labelSelector: String?, fieldSelector: String?
    ) async throws -> ObjectList<T> {
        var query: [(String, String)] = []
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        if let fieldSelector { query.append(("fieldSelector", fieldSelector)) }
        let path = T.resource.path(namespace: namespace)
        let data = try await send("GET", path, query: query, operation: operation("LIST", T.self, namespace, nil))
        return try decode(ObjectList<T>.self, data, path)
    }

    func create<T: KubernetesResource>(_ object: T, namespace: String) async throws -> T {
        var body = try JSONValue.encoding(object)
        if case .object(var fields) = body {
            fields["apiVersion"] = .string(T.resource.apiVersion)
            fields["kind"] = .string(T.resource.kind)
            fields["status"] = nil
            body = .object(fields)
        }
        let path = T.resource.path(namespace: namespace)
        // Retrying a create is safe only with a fixed name: a repeat then answers AlreadyExists.
        let data = try await send(
            "POST", path, body: try JSONEncoder().encode(body), contentType: "application/json",
            idempotent: object.metadata.name != nil,
            operation: operation("POST", T.self, namespace, object.metadata.name ?? object.metadata.generateName))
        return try decode(T.self, data, path)
    }

    func patch<T: KubernetesResource>(
        _ type: T.Type, namespace: String, name: String, mergePatch: JSONValue, resourceVersion: String?
    ) async throws -> T {
        var patch = mergePatch
        if let resourceVersion {
            guard case .object(var fields) = patch else {
                throw KubernetesError(.invalid, "a merge patch must be a JSON object")
            }
            var metadata: [String: JSONValue] = [:]
            if case .object(let existing) = fields["metadata"] { metadata = existing }
            metadata["resourceVersion"] = .string(resourceVersion)
            fields["metadata"] = .object(metadata)
            patch = .object(fields)
        }
        let path = T.resource.path(namespace: namespace, name: name)
        let data = try await send(
            "PATCH", path, body: try JSONEncoder().encode(patch), contentType: "application/merge-patch+json",
            operation: operation("PATCH", T.self, namespace, name))
        return try decode(T.self, data, path)
    }

    func delete<T: KubernetesResource>(_ type: T.Type, namespace: String, name: String) async throws {
        _ = try await send(
            "DELETE", T.resource.path(namespace: namespace, name: name),
            operation: operation("DELETE", T.self, namespace, name))
    }

    /// Read, change, write back as a merge patch of what changed, with the read's `resourceVersion` as a
    /// precondition; on 409 read again and repeat, at most `maxConflictAttempts` times. No change: no write.
    func update<T: KubernetesResource>(
        _ type: T.Type, namespace: String, name: String, _ change: (inout T) throws -> Void
    ) async throws -> T {
        var lastConflict: KubernetesError?
        for _ in 0..<max(1, options.maxConflictAttempts) {
            let current = try await get(T.self, namespace: namespace, name: name)
            var changed = current
            try change(&changed)
            guard let patch = JSONValue.mergePatch(from: try .encoding(current), to: try .encoding(changed)) else {
                return current
            }
            do {
                return try await self.patch(
                    T.self, namespace: namespace, name: name, mergePatch: patch,
                    resourceVersion: current.metadata.resourceVersion)
            } catch let error as KubernetesError where error.code == .conflict {
                lastConflict = error
            }
        }
        var error = lastConflict ?? KubernetesError(.conflict, "conflict")
        error.message = "gave up after \(options.maxConflictAttempts) conflicting writes: \(error.message)"
        throw error
    }

    // MARK: transport

    private func operation<T: KubernetesResource>(_ verb: String, _ type: T.Type, _ namespace: String, _ name: String?)
        -> String
    {
        "\(verb) \(T.resource) \(namespace)" + (name.map { "/" + $0 } ?? "")
    }

    private func decode<R: Decodable>(_ type: R.Type, _ data: Data, _ path: String) throws -> R {
        do {
            return try JSONDecoder().decode(R.self, from: data)
        } catch {
            throw KubernetesError(.server, "the answer of \(path) could not be decoded: \(error)")
        }
    }

    /// Sends one API request with the retries Kubernetes calls for and returns the body of a 2xx answer.
    func send(
        _ method: String, _ path: String, query: [(String, String)] = [], body: Data? = nil, contentType: String? = nil,
        idempotent: Bool = true, operation: String
    ) async throws -> Data {
        var url = config.server + path
        if !query.isEmpty {
            var components = URLComponents()
            components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) }
            url += "?" + (components.percentEncodedQuery ?? "")
        }
        var headers = [(name: "Accept", value: "application/json"), (name: "User-Agent", value: options.userAgent)]
        if let contentType { headers.append((name: "Content-Type", value: contentType)) }
        var throttled = 0
        var failed = 0
        var reauthenticated = false
        var rejected: Proof?
        while true {
            try Task.checkCancellation()
            let proof: Proof
            do {
                proof = try await self.proof(replacing: rejected)
            } catch var error as KubernetesError {
                error.operation = operation
                throw error
            }
            rejected = nil
            let request = HTTPRequest(
                method: method, url: url, headers: headers, body: body, timeout: options.requestTimeout,
                connectTimeout: options.connectTimeout, tls: proof.tls, auth: proof.auth, retry: .none)
            let response: HTTPResponse
            do {
                response = try await http.execute(request)
            } catch let error as HTTPError {
                if error.code == .cancelled { throw CancellationError() }
                failed += 1
                guard idempotent, error.isRetryable, failed < options.maxServerAttempts else {
                    throw KubernetesError(.transport, "\(error)", operation: operation)
                }
                try await backoff(failed)
                continue
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw KubernetesError(.transport, "\(error)", operation: operation)
            }
            if (200..<300).contains(response.status) { return response.body }
            let failure = KubernetesError.from(status: response.status, body: response.body, operation: operation)
            switch response.status {
            case 401 where !reauthenticated:
                switch config.credentials {
                case .none, .token: throw failure
                case .tokenFile, .exec: break  // the token may have rotated or expired since it was read
                }
                reauthenticated = true
                rejected = proof
            case 429:
                throttled += 1
                guard throttled < options.maxThrottleAttempts else { throw failure }
                try await Task.sleep(for: retryAfter(response))  // the wait the server asked for
            case 500, 502, 503, 504:
                failed += 1
                guard idempotent, failed < options.maxServerAttempts else { throw failure }
                try await backoff(failed)
            default:
                throw failure
            }
        }
    }

    /// What one request carries to prove who sends it.
    private struct Proof {
        var auth: Authentication?
        var tls: TLSOptions
        var credential: ExecCredentialPlugin.Credential?
    }

    /// The credentials for the next request; `rejected` is what the server just answered 401 to, read again.
    private func proof(replacing rejected: Proof?) async throws -> Proof {
        switch config.credentials {
        case .none:
            return Proof(tls: config.tls)
        case .token(let token):
            return Proof(auth: .bearer(token), tls: config.tls)
        case .tokenFile(let file):
            return Proof(auth: .bearer(try file.token(force: rejected != nil)), tls: config.tls)
        case .exec(let plugin):
            let credential = try await plugin.credential(replacing: rejected?.credential)
            var tls = config.tls
            if let certificate = credential.clientCertificate, let key = credential.clientKey {
                tls.clientCertificate = .pem(certificate)
                tls.clientKey = .pem(key)
            }
            return Proof(auth: credential.token.map { .bearer($0) }, tls: tls, credential: credential)
        }
    }

    /// `Retry-After` in seconds (or the Status body's `details.retryAfterSeconds`), at least 100 ms, at most
    /// `maxRetryAfter`; 1 s when the server named none.
    private func retryAfter(_ response: HTTPResponse) -> Duration {
        struct Body: Decodable {
            struct Details: Decodable { var retryAfterSeconds: Int? }
            var details: Details?
        }
        var seconds = response.header("Retry-After").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        if seconds == nil {
            seconds = (try? JSONDecoder().decode(Body.self, from: response.body))?.details?.retryAfterSeconds
        }
        let wait = Duration.seconds(seconds ?? 1)
        return min(max(wait, .milliseconds(100)), options.maxRetryAfter)
    }

    private func backoff(_ attempt: Int) async throws {
        let factor = 1 << min(attempt - 1, 6)
        try await Task.sleep(for: options.serverRetryDelay * factor)  // backoff before retrying a failed request
    }
}
