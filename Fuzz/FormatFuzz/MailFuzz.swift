import SMTPServer
import SMTPWire

/// A mail as a stranger could send it: read into parts, its reply text, its
/// delivery status, its date and words. Nothing crashes; what comes out is
/// bounded by what went in.
func fuzzMail(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    let mail = MIMEPart.parse(bytes)
    precondition(mail.leaves.count <= MIMEPart.maxParts + 1, "more parts than the bound")
    let content = ReplyContent(mail)
    precondition(content.attachments.count <= ReplyContent.maxAttachments)
    _ = DeliveryStatus(mail)
    for field in mail.headers.fields {
        _ = EncodedWords.decode(field.value)
        _ = HeaderParameters(field.value)
    }
    _ = mail.headers["Date"].flatMap(MailDate.parse)
    _ = HTMLText.plain(String(decoding: bytes, as: UTF8.self))
    _ = try? MailToken.verify(localPart: String(decoding: bytes.prefix(80), as: UTF8.self), keys: fuzzKeys, now: .distantPast)
    return 0
}

let fuzzKeys = try! MailTokenKeys(secrets: ["a fuzzing secret, 16+ bytes"])

/// An SMTP client as a stranger could play it: lines fed to the server's
/// state machine (recipients taken, mails stored); every reply is a valid
/// reply, and a mail never exceeds the size limit.
func fuzzSMTPServer(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    let limits = SMTPServerLimits(maxMessageSize: 2_000, maxRecipients: 5, maxCommandLine: 200, maxDataLine: 300, maxHeaderBytes: 500, maxErrors: 10)
    var session = SMTPServerSession(hostname: "mx.fuzz", limits: limits, tlsAvailable: true, peer: "fuzz")
    var pending: [SMTPServerSession.Action] = []
    func check(_ actions: [SMTPServerSession.Action]) {
        for a in actions {
            switch a {
            case .reply(let r):
                precondition((200..<600).contains(r.code), "reply code \(r.code)")
                precondition(!r.wire.dropLast(2).contains("\r\n\(r.code) ") || r.lines.count > 1)
            case .store(_, let mail):
                precondition(mail.count <= limits.maxMessageSize + 1_024 + 512, "stored \(mail.count) bytes")
                pending += session.stored(SMTPServerReply(250, "2.0.0", "Ok"))
            case .checkRecipient(let address):
                pending += session.recipientChecked(address, refusal: address.hasPrefix("x") ? SMTPServerReply(550, "5.1.1", "No") : nil)
            case .startTLS, .close: break
            }
        }
    }
    var start = 0
    for (i, b) in bytes.enumerated() where b == 0x0A {
        let line = bytes[start..<i]
        start = i + 1
        let fed: SMTPServerSession.Line
        if line.last == 0x0D {
            let content = line.dropLast()
            fed = content.count > (session.readingData ? limits.maxDataLine : limits.maxCommandLine) ? .overlong : .complete(content)
        } else {
            fed = .bareLF
        }
        check(session.receive(fed))
        while !pending.isEmpty {
            let now = pending
            pending = []
            check(now)
        }
        if session.closed { break }
    }
    return 0
}
