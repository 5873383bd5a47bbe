import Foundation
import SluiceCore
import SluiceKubernetes
import Testing

@testable import SluiceProviders

/// The object arithmetic of the Kubernetes routers, without a server.
@Suite struct RouterKubernetesObjectTests {
    func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    func canonical<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test func httpRouteWeightsChangeOnlyTheManagedBackends() throws {
        let rules = try decode(
            [HTTPRouteRule].self,
            """
            [{"matches": [{"path": {"value": "/api"}}],
              "backendRefs": [{"name": "checkout", "port": 8080, "weight": 90}, {"name": "checkout-canary", "port": 8080, "weight": 10},
                              {"name": "mirror", "port": 9090, "weight": 0}]},
             {"matches": [{"path": {"value": "/web"}}], "backendRefs": [{"name": "checkout", "port": 80}]},
             {"backendRefs": [{"name": "other", "port": 80, "weight": 5}]},
             {"backendRefs": [{"name": "checkout", "kind": "ServiceImport", "group": "multicluster.x-k8s.io", "weight": 3}]},
             {"backendRefs": [{"name": "checkout", "namespace": "elsewhere", "weight": 4}]}]
            """)
        let updated = try HTTPRouteWeights.rules(
            rules, stable: "checkout", canary: "checkout-canary", canaryWeight: 25, route: "checkout", namespace: "shop"
        )
        let expected = try decode(
            [HTTPRouteRule].self,
            """
            [{"matches": [{"path": {"value": "/api"}}],
              "backendRefs": [{"name": "checkout", "port": 8080, "weight": 75}, {"name": "checkout-canary", "port": 8080, "weight": 25},
                              {"name": "mirror", "port": 9090, "weight": 0}]},
             {"matches": [{"path": {"value": "/web"}}],
              "backendRefs": [{"name": "checkout", "port": 80, "weight": 75}, {"name": "checkout-canary", "port": 80, "weight": 25}]},
             {"backendRefs": [{"name": "other", "port": 80, "weight": 5}]},
             {"backendRefs": [{"name": "checkout", "kind": "ServiceImport", "group": "multicluster.x-k8s.io", "weight": 3}]},
             {"backendRefs": [{"name": "checkout", "namespace": "elsewhere", "weight": 4}]}]
            """)
        #expect(try canonical(updated) == canonical(expected))
        let split = try #require(
            HTTPRouteWeights.split(updated, stable: "checkout", canary: "checkout-canary", namespace: "shop"))
        #expect(TrafficSplit.percent(canary: split.canary, total: split.total) == 25)
    }

    @Test func httpRouteReadBackUsesTheDefaultWeightAndSeesOneEditedRule() throws {
        let rules = try decode(
            [HTTPRouteRule].self,
            """
            [{"backendRefs": [{"name": "s"}, {"name": "c"}]},
             {"backendRefs": [{"name": "s", "weight": 100}, {"name": "c", "weight": 0}]}]
            """)
        let split = try #require(HTTPRouteWeights.split(rules, stable: "s", canary: "c", namespace: "ns"))
        #expect(split.canary == 1 && split.total == 102)
        #expect(HTTPRouteWeights.split(rules, stable: "x", canary: "y", namespace: "ns") == nil)
        let error = #expect(throws: ProviderError.self) {
            try HTTPRouteWeights.rules(rules, stable: "x", canary: "y", canaryWeight: 5, route: "web", namespace: "ns")
        }
        #expect(error?.message == "no rule of HTTPRoute 'web' has a backendRef to the stable Service 'x'")
    }

    static let mainIngress = """
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": "7", "labels": {"app": "web"},
                      "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/", "nginx.ingress.kubernetes.io/canary-by-header": "x",
                                      "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
         "spec": {"ingressClassName": "nginx", "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
                  "rules": [{"host": "shop.example", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}},
                    {"path": "/static", "pathType": "Prefix", "backend": {"resource": {"kind": "Bucket", "name": "b"}}}]}}]}}
        """

    @Test func canaryIngressIsACopyPointingAtTheCanaryService() throws {
        let main = try decode(Ingress.self, Self.mainIngress)
        let canary = try CanaryIngress.make(
            from: main, existing: nil, name: "web-canary", canaryService: "web-v2", weight: 30)
        let expected = try decode(
            Ingress.self,
            """
            {"metadata": {"name": "web-canary", "namespace": "shop",
                          "labels": {"app": "web", "app.kubernetes.io/managed-by": "sluice"},
                          "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/", "nginx.ingress.kubernetes.io/canary": "true",
                                          "nginx.ingress.kubernetes.io/canary-weight": "30"},
                          "ownerReferences": [{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web", "uid": "u-1"}]},
             "spec": {"ingressClassName": "nginx", "defaultBackend": {"service": {"name": "web-v2", "port": {"number": 80}}},
                      "rules": [{"host": "shop.example", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web-v2", "port": {"name": "http"}}}},
                        {"path": "/static", "pathType": "Prefix", "backend": {"resource": {"kind": "Bucket", "name": "b"}}}]}}]}}
            """)
        #expect(try canonical(canary) == canonical(expected))
        #expect(CanaryIngress.percent(of: canary) == 30)

        let existing = try decode(
            Ingress.self, #"{"metadata": {"name": "web-canary", "resourceVersion": "12", "uid": "u-2"}, "spec": {}}"#)
        let update = try CanaryIngress.make(
            from: main, existing: existing, name: "web-canary", canaryService: "web-v2", weight: 0)
        #expect(update.metadata.resourceVersion == "12")
        #expect(CanaryIngress.percent(of: update) == 0)
    }

    @Test(
        arguments: [
            (#"{"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "40"}"#, 40),
            (#"{"nginx.ingress.kubernetes.io/canary": "false", "nginx.ingress.kubernetes.io/canary-weight": "40"}"#, 0),
            (#"{"nginx.ingress.kubernetes.io/canary": "true"}"#, 0),
            (
                #"{"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "1", "nginx.ingress.kubernetes.io/canary-weight-total": "4"}"#,
                25
            ),
            (
                #"{"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "lots"}"#,
                nil
            ),
        ] as [(String, Int?)])
    func canaryIngressReadBackIsWhatNGINXApplies(annotations: String, percent: Int?) throws {
        let canary = try decode(Ingress.self, #"{"metadata": {"annotations": \#(annotations)}, "spec": {}}"#)
        #expect(CanaryIngress.percent(of: canary) == percent)
    }

    @Test func anIngressWithoutServiceBackendsIsRefused() throws {
        let main = try decode(
            Ingress.self,
            #"{"metadata": {"name": "web"}, "spec": {"defaultBackend": {"resource": {"kind": "B", "name": "b"}}}}"#)
        let error = #expect(throws: ProviderError.self) {
            try CanaryIngress.make(from: main, existing: nil, name: "web-canary", canaryService: "c", weight: 5)
        }
        #expect(error?.message == "Ingress 'web' has no Service backend")
    }
}
