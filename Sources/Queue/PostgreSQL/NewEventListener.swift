import Logging
import NIOConcurrencyHelpers
import PostgresNIO

/// LISTEN msrpgw_new on a connection of its own (the insert trigger notifies
/// with the adapters of what it stored), reconnecting with a back-off when the
/// connection or the server goes away.
final class NewEventListener: Sendable {
    private let configuration: PostgresConnection.Configuration
    private let loop: any EventLoop
    private let logger: Logger
    private let handlers = NIOLockedValueBox<[@Sendable (Set<String>) -> Void]>([])
    private let running = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(configuration: PostgresConnection.Configuration, loop: any EventLoop, logger: Logger) {
        self.configuration = configuration
        self.loop = loop
        self.logger = logger
    }

    /// Adds a handler; the first one starts listening.
    func add(_ handler: @escaping @Sendable (Set<String>) -> Void) {
        handlers.withLockedValue { $0.append(handler) }
        running.withLockedValue { task in
            if task == nil { task = Task { await self.run() } }
        }
    }

    /// Stops listening and returns once the connection is closed (the queue's
    /// shutdown leaves no connection of its own behind).
    func stop() async {
        let task = running.withLockedValue { task in
            task?.cancel()
            return task
        }
        await task?.value
    }

    private func run() async {
        var backoff = Duration.milliseconds(250)
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(on: loop, configuration: configuration, id: 1, logger: logger)
                backoff = .milliseconds(250)
                let listened: Result<Void, any Error>
                do {
                    try await withTaskCancellationHandler {
                        try await connection.listen(on: "msrpgw_new") { notifications in
                            for try await notification in notifications {
                                let adapters = Set(notification.payload.split(separator: ",").map(String.init))
                                for handler in handlers.withLockedValue({ $0 }) { handler(adapters) }
                            }
                        }
                    } onCancel: {
                        // Ends the listen above; the close is awaited below.
                        connection.close().whenComplete { _ in }
                    }
                    listened = .success(())
                } catch {
                    listened = .failure(error)
                }
                try? await connection.close()
                try listened.get()
            } catch {
                if Task.isCancelled { return }
                logger.debug("queue notifications lost; listening again", metadata: ["error": "\(error)", "in": "\(backoff)"])
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(10))
        }
    }
}
