/// Runs `body`, and cancels it and throws `ControllerError.timeout` when it takes longer than `limit` on
/// `clock`. Every outbound call of the controller goes through here, whatever the provider's own timeout.
func withTimeout<T: Sendable>(
    _ limit: Duration, on clock: any SluiceClock, _ what: @autoclosure () -> String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let description = what()
    return try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await clock.sleep(for: limit)  // the bound itself, not a wait for a condition
            throw ControllerError(.timeout, "\(description) did not finish within \(limit)")
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw CancellationError() }
        return first
    }
}

extension Task {
    /// The task's result; cancelling the waiter cancels the task (an unstructured task is not cancelled with it).
    func resultCancellingWithWaiter() async -> Result<Success, Failure> {
        await withTaskCancellationHandler {
            await result
        } onCancel: {
            cancel()
        }
    }
}
