import Testing

@testable import SluiceProviders

@Test func providerErrorNamesProviderAndStatus() {
    let error = ProviderError(.rejected, provider: "caddy @id checkout", "no handler with this @id", status: 404)
    #expect(error.description == "caddy @id checkout: no handler with this @id (HTTP 404)")
    #expect(!error.isRetryable)
    #expect(ProviderError(.unavailable, provider: "p", "down").isRetryable)
}
