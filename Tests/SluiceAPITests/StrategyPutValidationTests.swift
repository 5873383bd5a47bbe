import SluiceAPI
import SluiceCore
import Testing

/// `PUT /v1/strategies/NS/NAME` holds exactly one strategy document named as the URL: the rule is
/// `StrategyLoader.loadOneLocated`'s, and the API answers 422 with its words and positions.
@Suite struct StrategyPutValidationTests {
    /// A valid strategy, shop/payments.
    static let payments = StrategyViewSecretsTests.source
    static let key = StrategyKey(namespace: "shop", name: "payments")

    static func refusal(_ source: String) -> APIError? {
        do {
            _ = try ControllerBackend.validate(source, as: key)
            return nil
        } catch {
            return error as? APIError
        }
    }

    @Test func oneDocumentNamedAsTheURLIsTheStrategy() throws {
        #expect(try ControllerBackend.validate(Self.payments, as: Self.key).key == Self.key)
    }

    @Test func twoDocumentsAreRefusedAsTheLoaderSays() throws {
        let other = Self.payments.replacingOccurrences(of: "name: payments, namespace", with: "name: cart, namespace")
        let error = try #require(Self.refusal(Self.payments + "---\n" + other))
        #expect(error.code == .invalidStrategy)
        #expect(error.message == "1 error in strategy shop/payments")
        #expect(error.details.map(\.message) == ["expected exactly one strategy document, found 2"])
        #expect(error.details.first?.line == 1)
    }

    @Test func aDocumentNamedOtherwiseIsRefusedAtItsMetadata() throws {
        let error = try #require(Self.refusal("# a comment\n" + Self.payments.replacingOccurrences(
            of: "name: payments, namespace", with: "name: cart, namespace")))
        #expect(error.message == "the document is strategy shop/cart but the URL names shop/payments")
        #expect(error.details.first?.path == "metadata")
        #expect(error.details.first?.line == 2, "the document starts after the comment")
    }
}
