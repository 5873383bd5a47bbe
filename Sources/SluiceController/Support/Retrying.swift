/// `body`'s result, retried `delay` (on `clock`) after each failure (handed to `failed`, to log it) until it
/// works; nil once the task is cancelled. For the store, whose failures (a busy or full disk) pass and must not
/// lose work.
public func retryingUntilCancelled<T: Sendable>(
    delay: Duration, clock: any SluiceClock = SystemClock(), failed: @Sendable (any Error) -> Void,
    _ body: @Sendable () async throws -> T
) async -> T? {
    while !Task.isCancelled {
        do {
            return try await body()
        } catch is CancellationError {
            return nil
        } catch {
            failed(error)
            try? await clock.sleep(for: delay)  // backoff before retrying
        }
    }
    return nil
}
