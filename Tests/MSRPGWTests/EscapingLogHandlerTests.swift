import Logging
import NIOConcurrencyHelpers
import Testing

@testable import msrpgw

/// Peer-supplied bytes cannot forge or hide log lines: every control character
/// in a message or a metadata value is written escaped.
@Suite struct EscapingLogHandlerTests {
    /// Keeps what it is asked to write.
    struct Recording: LogHandler {
        let lines: NIOLockedValueBox<[(String, Logger.Metadata)]>
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            lines.withLockedValue { $0.append((event.message.description, metadata.merging(event.metadata ?? [:]) { $1 })) }
        }
    }

    @Test func controlCharactersAreEscaped() {
        let lines = NIOLockedValueBox<[(String, Logger.Metadata)]>([])
        var logger = Logger(label: "t") { _ in EscapingLogHandler(Recording(lines: lines)) }
        logger[metadataKey: "peer"] = "bob\r\n2026-01-01 forged line"
        logger.warning("refused \("text/plain\rX")", metadata: [
            "content-type": "a\u{1B}[31mred", "list": .array(["ok", "tab\there"]), "nested": .dictionary(["k": "del\u{7F}"]),
            "plain": "sip:alice@example.com ✓",
        ])
        let (message, metadata) = lines.withLockedValue { $0[0] }
        #expect(message == "refused text/plain\\rX")
        #expect(metadata["peer"] == "bob\\r\\n2026-01-01 forged line")
        #expect(metadata["content-type"] == "a\\u{1B}[31mred")
        #expect(metadata["list"] == .array(["ok", "tab\\there"]))
        #expect(metadata["nested"] == .dictionary(["k": "del\\u{7F}"]))
        #expect(metadata["plain"] == "sip:alice@example.com ✓", "nothing else changes")
    }
}
