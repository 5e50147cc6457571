import DirectConnect
import Events
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SMTPWire

/// One SMTP connection, ready to send mails once `open` returns: greeting read,
/// EHLO done, TLS on (STARTTLS or implicit) as the relay requires, logged in
/// with AUTH PLAIN or LOGIN when credentials are configured (only over TLS).
final class SMTPConnection: @unchecked Sendable {
    let relay: SMTPRelay
    private let channel: any Channel
    /// Made on the channel's loop and only used there.
    private let handler: NIOLoopBound<SMTPClientHandler>
    private(set) var capabilities = SMTPCapabilities()
    private(set) var tlsActive = false
    /// False once anything went wrong: the pool drops it instead of reusing it.
    private(set) var usable = true
    /// Mails sent on it, for logs.
    private(set) var mailsSent = 0

    private init(relay: SMTPRelay, channel: any Channel, handler: NIOLoopBound<SMTPClientHandler>) {
        self.relay = relay
        self.channel = channel
        self.handler = handler
    }

    static func open(_ relay: SMTPRelay, group: any EventLoopGroup, tls: NIOSSLContext?, logger: Logger) async throws(SMTPError) -> SMTPConnection {
        let made = NIOLockedValueBox<NIOLoopBound<SMTPClientHandler>?>(nil)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.nanoseconds(relay.timeouts.connect.nanoseconds))
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        if relay.security == .implicitTLS, let tls {
                            try ch.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: sniName(relay.host)))
                        }
                        let handler = SMTPClientHandler()
                        try ch.pipeline.syncOperations.addHandler(handler)
                        made.withLockedValue { $0 = NIOLoopBound(handler, eventLoop: ch.eventLoop) }
                    }
                }
                .connect(hostOrAddress: relay.host, port: relay.port).get()
        } catch {
            throw SMTPError(.connect("\(relay.host):\(relay.port): \(error)"))
        }
        guard let handler = made.withLockedValue({ $0 }) else { throw SMTPError(.connect("\(relay.host):\(relay.port): no handler")) }
        let c = SMTPConnection(relay: relay, channel: channel, handler: handler)
        c.tlsActive = relay.security == .implicitTLS
        do {
            try await c.handshake(tls: tls, logger: logger)
        } catch {
            c.close()
            throw error
        }
        return c
    }

    private func handshake(tls: NIOSSLContext?, logger: Logger) async throws(SMTPError) {
        let greeting = try await read(stage: "the greeting", timeout: relay.timeouts.greeting)
        guard greeting.code == 220 else { throw SMTPError(.refused(stage: "greeting", reply: greeting)) }
        try await ehlo()
        if relay.security == .startTLS {
            guard capabilities.startTLS else {
                throw SMTPError(.policy("\(relay.host) does not offer STARTTLS, which this relay requires (security = \"starttls\")"))
            }
            let reply = try await command("STARTTLS", stage: "STARTTLS")
            guard reply.code == 220 else { throw SMTPError(.refused(stage: "STARTTLS", reply: reply)) }
            guard let tls else { throw SMTPError(.tls("no TLS context")) }
            do {
                let host = sniName(relay.host)
                try await channel.eventLoop.submit { [channel] in
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: host), position: .first)
                }.get()
            } catch {
                throw SMTPError(.tls("\(error)"))
            }
            tlsActive = true
            // RFC 3207 §4.2: forget everything learnt before TLS and ask again.
            try await ehlo()
        }
        if let user = relay.username, let password = relay.password {
            try await authenticate(user: user, password: password)
        }
    }

    private func ehlo() async throws(SMTPError) {
        let reply = try await command("EHLO \(relay.heloName)", stage: "EHLO")
        guard reply.code == 250 else { throw SMTPError(.refused(stage: "EHLO", reply: reply)) }
        capabilities = SMTPCapabilities(ehlo: reply)
    }

    private func authenticate(user: String, password: String) async throws(SMTPError) {
        guard tlsActive else { throw SMTPError(.policy("credentials are only sent over TLS: \(relay.name) has security = \"none\"")) }
        let mechanisms = capabilities.authMechanisms
        if let wanted = relay.authMechanism, !mechanisms.contains(wanted) {
            throw SMTPError(.policy("\(relay.host) does not offer AUTH \(wanted) (it offers \(mechanisms.sorted().joined(separator: " ")))"))
        }
        if mechanisms.contains("PLAIN"), relay.authMechanism ?? "PLAIN" == "PLAIN" {
            let token = Data(([0] + Array(user.utf8) + [0] + Array(password.utf8))).base64EncodedString()
            let reply = try await command("AUTH PLAIN \(token)", stage: "AUTH PLAIN", secret: true)
            guard reply.code == 235 else { throw SMTPError(.refused(stage: "AUTH PLAIN", reply: reply)) }
        } else if mechanisms.contains("LOGIN") {
            var reply = try await command("AUTH LOGIN", stage: "AUTH LOGIN")
            guard reply.code == 334 else { throw SMTPError(.refused(stage: "AUTH LOGIN", reply: reply)) }
            reply = try await command(Data(user.utf8).base64EncodedString(), stage: "AUTH LOGIN user", secret: true)
            guard reply.code == 334 else { throw SMTPError(.refused(stage: "AUTH LOGIN", reply: reply)) }
            reply = try await command(Data(password.utf8).base64EncodedString(), stage: "AUTH LOGIN password", secret: true)
            guard reply.code == 235 else { throw SMTPError(.refused(stage: "AUTH LOGIN", reply: reply)) }
        } else {
            throw SMTPError(.policy("\(relay.host) offers no AUTH PLAIN or LOGIN (it offers \(mechanisms.sorted().joined(separator: " ")))"))
        }
    }

    // MARK: - Mail transactions

    /// What the server said to one mail.
    struct TransactionResult: Sendable {
        var mail: SMTPReply
        var accepted: [String] = []
        var refused: [(String, SMTPReply)] = []
        var deferred: [(String, SMTPReply)] = []
        /// The reply to DATA (354) and to the final ".", when they were sent.
        var dataStart: SMTPReply?
        var dataEnd: SMTPReply?
    }

    /// MAIL, RCPT for each recipient, and (when at least one was accepted and
    /// none deferred) DATA with the message. With PIPELINING the envelope goes in
    /// one write. Throws only when the connection broke; the server's refusals are
    /// in the result.
    /// `resetFirst` (a reused connection) starts with RSET, in the same write when pipelining.
    func send(from: String, to recipients: [String], message: [UInt8], smtpUTF8: Bool, resetFirst: Bool = false) async throws(SMTPError) -> TransactionResult {
        var params = ""
        if capabilities.maxSize != nil { params += " SIZE=\(message.count)" }
        // Bodies are always 7-bit (quoted-printable, base64); only SMTPUTF8 headers are 8-bit.
        if smtpUTF8, capabilities.eightBitMIME { params += " BODY=8BITMIME" }
        if smtpUTF8 { params += " SMTPUTF8" }
        let mailCommand = "MAIL FROM:<\(from)>\(params)"
        let rcptCommands = recipients.map { "RCPT TO:<\($0)>" }
        var result: TransactionResult
        if capabilities.pipelining, recipients.count == 1 {
            // RFC 2920 §3.1: DATA may end the pipelined group; the server refuses it
            // (503/554) when no recipient was accepted. One round trip for the envelope.
            // Only for one recipient: with several, one deferred and one accepted would
            // open DATA for a mail that must wait for all of them.
            // The mail goes as soon as the 354 is read, from the event loop: one wait
            // for the whole transaction (two round trips, no hop between them).
            let data = SMTPData.stuffed(message)
            let skip = resetFirst ? 1 : 0
            var replies = try await commands(
                (resetFirst ? ["RSET"] : []) + [mailCommand] + rcptCommands + ["DATA"], stage: "MAIL/RCPT/DATA",
                timeout: relay.timeouts.command + relay.timeouts.dataEnd
            ) { replies in
                guard replies.count == skip + 3, skip == 0 || replies[0].code == 250, replies[skip].isPositive,
                      replies[skip + 1].isPositive, replies[skip + 2].code == 354 else { return nil }
                return (data, 1)
            }
            if resetFirst {
                guard replies.removeFirst().code == 250 else {
                    usable = false
                    throw SMTPError(.closed(stage: "RSET (refused)"))
                }
            }
            result = TransactionResult(mail: replies[0])
            classify(recipients[0], replies[1], into: &result)
            result.dataStart = replies[2]
            if replies.count == 4 {
                result.dataEnd = replies[3]
                mailsSent += 1
                return result
            }
            // Not sent: a broken server that said 354 without a recipient gets "." at once (§3.1): no mail, nobody to get it.
            if replies[2].code == 354 { _ = try await raw(Array(".\r\n".utf8), stage: "the end of an empty DATA", timeout: relay.timeouts.dataEnd) }
            try await reset()
            return result
        } else {
            if capabilities.pipelining {
                var replies = try await commands((resetFirst ? ["RSET"] : []) + [mailCommand] + rcptCommands, stage: "MAIL/RCPT")
                if resetFirst, replies.removeFirst().code != 250 {
                    usable = false
                    throw SMTPError(.closed(stage: "RSET (refused)"))
                }
                result = TransactionResult(mail: replies[0])
                for (r, reply) in zip(recipients, replies.dropFirst()) { classify(r, reply, into: &result) }
            } else {
                if resetFirst { try await reset() }
                result = TransactionResult(mail: try await command(mailCommand, stage: "MAIL"))
                if result.mail.isPositive {
                    for (r, c) in zip(recipients, rcptCommands) { classify(r, try await command(c, stage: "RCPT"), into: &result) }
                }
            }
            guard result.mail.isPositive, !result.accepted.isEmpty, result.deferred.isEmpty else {
                try await reset()
                return result
            }
            let start = try await command("DATA", stage: "DATA", timeout: relay.timeouts.dataStart)
            result.dataStart = start
            guard start.code == 354 else {
                try await reset()
                return result
            }
        }
        result.dataEnd = try await raw(SMTPData.stuffed(message), stage: "the end of DATA", timeout: relay.timeouts.dataEnd)
        mailsSent += 1
        return result
    }

    private func classify(_ recipient: String, _ reply: SMTPReply, into result: inout TransactionResult) {
        if reply.isPositive { result.accepted.append(recipient) }
        else if reply.isTransient { result.deferred.append((recipient, reply)) }
        else { result.refused.append((recipient, reply)) }
    }

    /// RSET: a clean slate for the next mail on this connection.
    func reset() async throws(SMTPError) {
        let reply = try await command("RSET", stage: "RSET")
        if reply.code != 250 { usable = false }
    }

    /// QUIT and close, without waiting long.
    func quit() async {
        if usable, channel.isActive {
            _ = try? await command("QUIT", stage: "QUIT", timeout: .seconds(2))
        }
        close()
    }

    func close() {
        usable = false
        channel.close(promise: nil)
    }

    var isActive: Bool { usable && channel.isActive }

    // MARK: - Plumbing

    private func command(_ line: String, stage: String, timeout: Duration? = nil, secret: Bool = false) async throws(SMTPError) -> SMTPReply {
        try await commands([line], stage: stage, timeout: timeout)[0]
    }

    private func commands(_ lines: [String], stage: String, timeout: Duration? = nil,
                          then next: (@Sendable ([SMTPReply]) -> (bytes: [UInt8], replies: Int)?)? = nil) async throws(SMTPError) -> [SMTPReply] {
        var bytes: [UInt8] = []
        for l in lines {
            bytes += l.utf8
            bytes += [0x0D, 0x0A]
        }
        return try await exchange(bytes, replies: lines.count, stage: stage, timeout: timeout ?? relay.timeouts.command, then: next)
    }

    private func raw(_ bytes: [UInt8], stage: String, timeout: Duration) async throws(SMTPError) -> SMTPReply {
        try await exchange(bytes, replies: 1, stage: stage, timeout: timeout)[0]
    }

    private func read(stage: String, timeout: Duration) async throws(SMTPError) -> SMTPReply {
        try await exchange([], replies: 1, stage: stage, timeout: timeout)[0]
    }

    /// Registers the expected replies, writes `bytes`, and waits for all of them;
    /// a time-out closes the connection (the conversation is out of step).
    /// `next`, called on the event loop with those replies, may write more at once
    /// and expect its replies too (the mail after the 354): all come back together.
    private func exchange(_ bytes: [UInt8], replies count: Int, stage: String, timeout: Duration,
                          then next: (@Sendable ([SMTPReply]) -> (bytes: [UInt8], replies: Int)?)? = nil) async throws(SMTPError) -> [SMTPReply] {
        let loop = channel.eventLoop
        let promises = (0..<count).map { _ in loop.makePromise(of: SMTPReply.self) }
        let channel = self.channel
        let handler = self.handler
        loop.execute {
            for p in promises { handler.value.expect(p) }
            if !bytes.isEmpty { channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil) }
        }
        // On time-out the connection is closed: the handler then fails what waits,
        // and the flag says why.
        let timedOut = NIOLockedValueBox(false)
        let deadline = loop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
            timedOut.withLockedValue { $0 = true }
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        // One wait for all the replies: awaiting each promise in turn cost a hop
        // from the event loop to the caller's executor per reply (five per mail).
        do {
            let first = EventLoopFuture.whenAllSucceed(promises.map(\.futureResult), on: loop)
            guard let next else { return try await first.get() }
            return try await first.flatMap { replies -> EventLoopFuture<[SMTPReply]> in
                guard let (more, count) = next(replies) else { return loop.makeSucceededFuture(replies) }
                let after = (0..<count).map { _ in loop.makePromise(of: SMTPReply.self) }
                for p in after { handler.value.expect(p) }
                channel.writeAndFlush(ByteBuffer(bytes: more), promise: nil)
                return EventLoopFuture.whenAllSucceed(after.map(\.futureResult), on: loop).map { replies + $0 }
            }.get()
        } catch {
            usable = false
            if timedOut.withLockedValue({ $0 }) { throw SMTPError(.timeout(stage: stage)) }
            if let e = error as? SMTPError, case .protocolError = e.kind { throw e }
            if let e = error as? SMTPError, case .tls = e.kind { throw e }
            throw SMTPError(.closed(stage: stage))
        }
    }
}

/// Server names go in SNI; IP addresses may not (RFC 6066 §3).
func sniName(_ host: String) -> String? {
    let isIP = host.contains(":") || host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy { UInt8($0) != nil }
    return isIP ? nil : host
}
