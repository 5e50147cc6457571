import Events
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import SMTPWire

/// Delivers events to `mailto:` targets through a submission server, on SwiftNIO.
/// Connections are reused (RSET between mails) up to the relay's limit; each
/// reply decides: 2xx delivered, 4yz retry on the gateway's schedule, 5yz final
/// with an MSRP status for the failure REPORT. Enhanced status codes stay in the
/// event's last error.
public final class SMTPAdapter: Adapter {
    public let name = "smtp"
    public let schemes = ["mailto"]
    /// Deliveries in flight: four per connection, so that the next mails of each
    /// connection are composed and waiting for it (in the pool's order) while the
    /// last one's outcome is recorded. With one per connection a connection idled
    /// through every dispatcher round trip: 8 connections delivered 2.9 k mails/s
    /// from a backlog with 8 in flight, 3.3 k with 16, 3.8 k with 32 (and 64).
    public let concurrency: Int
    /// The relay in force (a reload may change it).
    public var relay: SMTPRelay { current.withLockedValue { $0.relay } }
    /// Every mail goes through the one relay: it is the endpoint, with all the slots.
    public var endpointConcurrency: Int { concurrency }
    private let current: NIOLockedValueBox<Current>
    private let group: any EventLoopGroup
    private let logger: Logger

    /// What a configuration reload replaces: a new relay gets a new pool, the
    /// old one closes its connections as their mails finish.
    private struct Current: Sendable {
        var relay: SMTPRelay
        var settings: MailSettings
        var pool: SMTPConnectionPool
    }

    public func endpoint(of target: String) -> String { "smtp://\(relay.host):\(relay.port)" }

    public init(relay: SMTPRelay, mail: MailSettings, group: any EventLoopGroup, logger: Logger = Logger(label: "msrpgw.smtp")) throws {
        self.concurrency = relay.maxConnections * 4
        self.group = group
        self.logger = logger
        try Self.check(mail)
        current = NIOLockedValueBox(Current(relay: relay, settings: mail, pool: try Self.pool(relay: relay, group: group, logger: logger)))
    }

    /// Puts a reloaded `[smtp]` in force. The number of connections
    /// (`max_connections`) stays as started: the dispatcher sized its slots on it.
    public func reconfigure(relay: SMTPRelay, mail: MailSettings) throws {
        var relay = relay
        relay.maxConnections = concurrency / 4
        let old = current.withLockedValue { $0 }
        try Self.check(mail)
        if relay == old.relay {
            current.withLockedValue { $0.settings = mail }
            return
        }
        let pool = try Self.pool(relay: relay, group: group, logger: logger)
        current.withLockedValue { $0 = Current(relay: relay, settings: mail, pool: pool) }
        // The old relay may be the one that stopped answering: its QUITs must not hold up the reload.
        Task { await old.pool.shutdown() }
    }

    private static func check(_ mail: MailSettings) throws(SMTPError) {
        guard MailAddress(address: mail.from).isValid else { throw SMTPError(.policy("mail.from \(mail.from.debugDescription) is not an address")) }
    }

    private static func pool(relay: SMTPRelay, group: any EventLoopGroup, logger: Logger) throws -> SMTPConnectionPool {
        var tls: NIOSSLContext?
        if relay.security != .none {
            var c = TLSConfiguration.makeClientConfiguration()
            c.certificateVerification = relay.verifyCertificate ? .fullVerification : .none
            if let ca = relay.caFile { c.trustRoots = .file(ca) }
            tls = try NIOSSLContext(configuration: c)
        } else {
            logger.warning("SMTP relay without TLS: mails and credentials travel in clear", metadata: ["relay": "\(relay.name)"])
        }
        if relay.security != .none, !relay.verifyCertificate {
            logger.warning("SMTP relay certificate is not verified", metadata: ["relay": "\(relay.name)"])
        }
        return SMTPConnectionPool(relay: relay, group: group, tls: tls, logger: logger)
    }

    public func validate(target: String) throws(RouteError) {
        guard mailtoRecipients(target) != nil else { throw RouteError("\(target) is not a mailto: URI with valid addresses") }
    }

    public func shutdown() async { await current.withLockedValue { $0.pool }.shutdown() }

    public func deliver(_ event: QueuedEvent) async -> DeliveryOutcome {
        guard let recipients = mailtoRecipients(event.target) else {
            return .permanentFailure(code: 400, reason: "\(event.target) is not a mailto: URI with valid addresses")
        }
        guard let body = event.body.contents() else { return .permanentFailure(code: 500, reason: "the body file of event \(event.id) is missing") }
        let (relay, settings, pool) = current.withLockedValue { ($0.relay, $0.settings, $0.pool) }
        let draft = MailDraft(event: event, recipients: recipients, body: body, settings: settings)
        let needsUTF8 = recipients.contains { MailAddress(address: $0).needsSMTPUTF8 }
        // A reused connection the server has dropped meanwhile gets one more try on a fresh one.
        for attempt in 0..<2 {
            let connection: SMTPConnection
            let reused: Bool
            do {
                (connection, reused) = try await pool.acquire()
            } catch {
                logger.warning("cannot reach the SMTP relay", metadata: ["relay": "\(relay.name)", "error": "\(error)"])
                return .retry(after: nil, reason: "SMTP relay \(relay.name): \(error)")
            }
            if needsUTF8, !connection.capabilities.smtpUTF8 {
                pool.release(connection)
                return .permanentFailure(code: 403, reason: "recipient address needs SMTPUTF8, which \(relay.host) does not offer")
            }
            let message = draft.composed(utf8Headers: needsUTF8)
            if let max = connection.capabilities.maxSize, message.count > max {
                pool.release(connection)
                return .permanentFailure(code: 413, reason: "mail of \(message.count) bytes over the server's SIZE \(max)")
            }
            do {
                let result = try await connection.send(
                    from: settings.returnPath(for: event), to: recipients, message: message, smtpUTF8: needsUTF8, resetFirst: reused)
                pool.release(connection)
                return Self.outcome(result)
            } catch {
                pool.release(connection)
                if reused, attempt == 0, case .closed = error.kind { continue }
                return .retry(after: nil, reason: "SMTP: \(error)")
            }
        }
        return .retry(after: nil, reason: "SMTP connection lost")
    }

    /// What the server's replies mean for the event.
    static func outcome(_ r: SMTPConnection.TransactionResult) -> DeliveryOutcome {
        func final(_ stage: String, _ reply: SMTPReply) -> DeliveryOutcome {
            reply.isTransient
                ? .retry(after: nil, reason: "\(stage): \(reply)")
                : .permanentFailure(code: msrpCode(for: reply), reason: "\(stage): \(reply)")
        }
        if !r.mail.isPositive { return final("MAIL FROM", r.mail) }
        if let (rcpt, reply) = r.deferred.first { return .retry(after: nil, reason: "RCPT TO <\(rcpt)>: \(reply)") }
        if r.accepted.isEmpty, let (rcpt, reply) = r.refused.first { return final("RCPT TO <\(rcpt)>", reply) }
        guard let start = r.dataStart else { return .retry(after: nil, reason: "DATA was not sent") }
        guard start.code == 354 else { return final("DATA", start) }
        guard let end = r.dataEnd else { return .retry(after: nil, reason: "no reply to the end of DATA") }
        guard end.isPositive else { return final("end of DATA", end) }
        let proof = "\(end)"
        if let (_, first) = r.refused.first {
            let refused = r.refused.map { "<\($0.0)> \($0.1)" }.joined(separator: "; ")
            return .partial(proof: proof, code: msrpCode(for: first), reason: "refused: \(refused)")
        }
        return .delivered(proof: proof)
    }

    /// The MSRP status of a failure REPORT for a refusing mail server (the
    /// same mapping as a bounce's: `EnhancedStatus`).
    static func msrpCode(for reply: SMTPReply) -> Int {
        EnhancedStatus.msrpCode(reply.enhancedCode ?? "", replyCode: reply.code)
    }
}
