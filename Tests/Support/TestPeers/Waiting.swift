/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
/// Tests wait on conditions like this, never on a fixed sleep: a loaded CI
/// machine can take seconds for what takes milliseconds alone.
public func until(_ timeout: Duration = .seconds(15), every interval: Duration = .milliseconds(20),
                  _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}
