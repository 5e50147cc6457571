import Testing

@testable import SMTPServer

/// The server's state machine alone: each command's reply, the order rules,
/// the limits; what needs the gateway comes out as actions.
@Suite struct SMTPServerSessionTests {
    func session(limits: SMTPServerLimits = SMTPServerLimits(), tls: Bool = false) -> SMTPServerSession {
        SMTPServerSession(hostname: "mx.test", limits: limits, tlsAvailable: tls, peer: "192.0.2.1")
    }

    /// Feeds `lines`, answering every recipient check with `refusal(address)` and every store with 250.
    func run(_ s: inout SMTPServerSession, _ lines: [String], refusal: (String) -> SMTPServerReply? = { _ in nil },
             stored: inout [(SMTPEnvelope, String)]) -> [String] {
        var out: [String] = []
        func perform(_ actions: [SMTPServerSession.Action]) {
            for a in actions {
                switch a {
                case .reply(let r): out.append("\(r.code)" + (r.enhanced.map { " " + $0 } ?? ""))
                case .checkRecipient(let address): perform(s.recipientChecked(address, refusal: refusal(address)))
                case .store(let envelope, let mail):
                    stored.append((envelope, String(decoding: mail, as: UTF8.self)))
                    perform(s.stored(SMTPServerReply(250, "2.0.0", "Ok")))
                case .startTLS: out.append("tls")
                case .close: out.append("close")
                }
            }
        }
        for line in lines {
            let l: SMTPServerSession.Line = line == "<overlong>" ? .overlong : line == "<bareLF>" ? .bareLF : .complete(Array(line.utf8)[...])
            perform(s.receive(l))
        }
        return out
    }

    func run(_ lines: [String], limits: SMTPServerLimits = SMTPServerLimits(), tls: Bool = false,
             refusal: (String) -> SMTPServerReply? = { _ in nil }) -> (replies: [String], stored: [(SMTPEnvelope, String)]) {
        var s = session(limits: limits, tls: tls)
        var stored: [(SMTPEnvelope, String)] = []
        let replies = run(&s, lines, refusal: refusal, stored: &stored)
        return (replies, stored)
    }

    @Test func aWholeMail() throws {
        let (replies, stored) = run([
            "EHLO client.test", "MAIL FROM:<bob@example.org> SIZE=100 BODY=8BITMIME", "RCPT TO:<reply+x@mx.test>",
            "DATA", "Subject: hi", "", "..a dotted line", "line", ".", "QUIT",
        ])
        #expect(replies == ["250", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0", "221 2.0.0", "close"])
        let (envelope, mail) = try #require(stored.first)
        #expect(envelope.mailFrom == "bob@example.org")
        #expect(envelope.recipients == ["reply+x@mx.test"])
        #expect(mail.hasPrefix("Received: from client.test (192.0.2.1)\r\n\tby mx.test (msrpgw) with ESMTP;"))
        #expect(mail.hasSuffix("Subject: hi\r\n\r\n.a dotted line\r\nline\r\n"))
    }

    @Test func ehloOffersTheExtensions() {
        var s = session(tls: true)
        guard case .reply(let r) = s.receive(.complete(Array("EHLO x".utf8)[...])).first else {
            Issue.record("no reply")
            return
        }
        #expect(r.lines == ["mx.test", "PIPELINING", "SIZE 10485760", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "STARTTLS"])
        #expect(r.wire.hasPrefix("250-mx.test\r\n250-PIPELINING\r\n") && r.wire.hasSuffix("250 STARTTLS\r\n"))
    }

    @Test(arguments: [
        // (lines, replies) — each a case of bad or out-of-order input.
        (["MAIL FROM:<a@b>"], ["503 5.5.1"]),
        (["EHLO x", "RCPT TO:<a@b>"], ["250", "503 5.5.1"]),
        (["EHLO x", "DATA"], ["250", "503 5.5.1"]),
        (["EHLO x", "MAIL FROM:<a@b>", "DATA"], ["250", "250 2.1.0", "503 5.5.1"]),
        (["EHLO x", "MAIL FROM:<a@b>", "MAIL FROM:<a@b>"], ["250", "250 2.1.0", "503 5.5.1"]),
        (["EHLO"], ["501 5.5.4"]),
        (["EHLO x", "MAIL FROM:a@b"], ["250", "501 5.5.4"]),
        (["EHLO x", "MAIL FROM:<a@b> SIZE=99999999999"], ["250", "552 5.3.4"]),
        (["EHLO x", "MAIL FROM:<a@b> BODY=BINARYMIME"], ["250", "555 5.5.4"]),
        (["EHLO x", "MAIL FROM:<a@b> RET=FULL"], ["250", "555 5.5.4"]),
        (["EHLO x", "MAIL FROM:<ü@b>"], ["250", "553 5.6.7"]),
        (["EHLO x", "MAIL FROM:<ü@b> SMTPUTF8"], ["250", "250 2.1.0"]),
        (["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<>"], ["250", "250 2.1.0", "501 5.5.4"]),
        (["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<a@b>\rDATA"], ["250", "250 2.1.0", "500 5.5.2"]),
        (["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<a<b@c>"], ["250", "250 2.1.0", "501 5.5.4"]),
        (["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<a b@c>"], ["250", "250 2.1.0", "501 5.5.4"]),
        (["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<a@b@c>"], ["250", "250 2.1.0", "501 5.5.4"]),
        (["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<@route:a@b>"], ["250", "250 2.1.0", "250 2.1.5"]),
        (["EHLO x", "MAIL FROM:<a\0@b>"], ["250", "500 5.5.2"]),
        // Found by fuzzing: a parameter without a keyword crashed the parser.
        (["EHLO x", "MAIL FROM:<a@b>= SIZE=101"], ["250", "501 5.5.4"]),
        (["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<r@mx.test> ="], ["250", "250 2.1.0", "501 5.5.4"]),
        (["STARTTLS"], ["502 5.5.1"]),
        (["EHLO x", "<overlong>", "NOOP"], ["250", "500 5.5.2", "250 2.0.0"]),
        (["EHLO x", "<bareLF>", "NOOP"], ["250", "521 5.5.2", "close"]),
        (["VRFY root", "HELP", "RSET", "NOOP", "FOO"], ["252 2.5.0", "214 2.0.0", "250 2.0.0", "250 2.0.0", "500 5.5.2"]),
    ])
    func badInput(_ lines: [String], _ expected: [String]) {
        #expect(run(lines).replies == expected)
    }

    @Test func tooManyErrorsCloses() {
        let (replies, _) = run(Array(repeating: "FOO", count: 25), limits: SMTPServerLimits(maxErrors: 3))
        #expect(replies == ["500 5.5.2", "500 5.5.2", "500 5.5.2", "421 4.7.0", "close"])
    }

    @Test func recipientsBoundedAndRefusalsCounted() {
        let lines = ["EHLO x", "MAIL FROM:<a@b>"] + (0..<5).map { "RCPT TO:<r\($0)@mx.test>" }
        let (replies, _) = run(lines, limits: SMTPServerLimits(maxRecipients: 3))
        #expect(replies == ["250", "250 2.1.0", "250 2.1.5", "250 2.1.5", "250 2.1.5", "452 4.5.3", "452 4.5.3"])
        let refused = run(["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<x@y>", "DATA"], refusal: { _ in SMTPServerReply(550, "5.7.1", "Relay access denied") })
        #expect(refused.replies == ["250", "250 2.1.0", "550 5.7.1", "503 5.5.1"])
    }

    @Test func dataLimits() {
        let big = ["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<r@mx.test>", "DATA"] + Array(repeating: String(repeating: "x", count: 998), count: 20) + [".", "NOOP"]
        let (replies, stored) = run(big, limits: SMTPServerLimits(maxMessageSize: 10_000))
        #expect(replies == ["250", "250 2.1.0", "250 2.1.5", "354", "552 5.3.4", "250 2.0.0"])
        #expect(stored.isEmpty)
        let longLine = ["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<r@mx.test>", "DATA", "Subject: x", "<overlong>", "more", ".", "NOOP"]
        #expect(run(longLine).replies == ["250", "250 2.1.0", "250 2.1.5", "354", "552 5.3.4", "250 2.0.0"])
        let headers = ["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<r@mx.test>", "DATA"] + (0..<100).map { "X-H\($0): " + String(repeating: "v", count: 100) } + ["", "body", "."]
        #expect(run(headers, limits: SMTPServerLimits(maxHeaderBytes: 4_096)).replies.last == "552 5.3.4")
        let loop = ["EHLO x", "MAIL FROM:<a@b>", "RCPT TO:<r@mx.test>", "DATA"] + Array(repeating: "Received: from x by y", count: 31) + ["", "body", "."]
        #expect(run(loop).replies.last == "554 5.4.6")
    }

    @Test func startTLSStartsOver() {
        let (replies, _) = run(["EHLO x", "STARTTLS", "MAIL FROM:<a@b>", "EHLO x", "STARTTLS"], tls: true)
        #expect(replies == ["250", "220 2.0.0", "tls", "503 5.5.1", "250", "502 5.5.1"])
        var s = SMTPServerSession(hostname: "mx.test", limits: SMTPServerLimits(), tlsAvailable: true, tlsRequired: true, peer: "p")
        var stored: [(SMTPEnvelope, String)] = []
        #expect(run(&s, ["EHLO x", "MAIL FROM:<a@b>"], stored: &stored) == ["250", "530 5.7.0"])
    }
}
