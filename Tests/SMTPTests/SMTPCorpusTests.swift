import Foundation
import SMTPServer
import SMTPWire
import Testing

/// The fuzzers' seeds and the regressions they found (Fuzz/corpus-smtpd,
/// Fuzz/corpus-mail), run as tests: the listener's state machine takes every
/// client's lines without trapping, and every mail reads.
struct SMTPCorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz").path

    static func files(_ corpus: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root + "/" + corpus)) ?? []).sorted().map { corpus + "/" + $0 }
    }

    @Test(arguments: files("corpus-smtpd"))
    func clientLines(_ name: String) throws {
        let bytes = try #require(FileManager.default.contents(atPath: Self.root + "/" + name)).map { $0 }
        var session = SMTPServerSession(hostname: "mx.test", limits: SMTPServerLimits(maxMessageSize: 2_000), tlsAvailable: true, peer: "corpus")
        var replies = 0
        func run(_ actions: [SMTPServerSession.Action]) {
            for a in actions {
                switch a {
                case .reply: replies += 1
                case .checkRecipient(let address): run(session.recipientChecked(address, refusal: nil))
                case .store: run(session.stored(SMTPServerReply(250, "2.0.0", "Ok")))
                case .startTLS, .close: break
                }
            }
        }
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) where !session.closed {
            run(session.receive(line.last == 0x0D ? .complete(line.dropLast()) : .bareLF))
        }
        #expect(replies > 0)
    }

    @Test(arguments: files("corpus-mail"))
    func mails(_ name: String) throws {
        let bytes = try #require(FileManager.default.contents(atPath: Self.root + "/" + name)).map { $0 }
        let mail = MIMEPart.parse(bytes)
        _ = ReplyContent(mail)
        _ = DeliveryStatus(mail)
        #expect(mail.leaves.count <= MIMEPart.maxParts + 1)
    }
}
