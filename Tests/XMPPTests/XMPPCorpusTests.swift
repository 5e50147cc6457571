import Foundation
import Testing
import XMPPWire

/// The fuzzer's property over the seeds and the regressions it found
/// (Fuzz/corpus-xmpp): split in two reads as the fuzzer does, every stanza
/// read is written back as XML that reads as the same stanza.
struct XMPPCorpusTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus-xmpp").path

    static var files: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() }

    @Test(arguments: files)
    func roundTrip(_ name: String) throws {
        let bytes = try #require(FileManager.default.contents(atPath: Self.directory + "/" + name)).map { $0 }
        guard !bytes.isEmpty else { return }
        let cut = max(1, Int(bytes[0]) % bytes.count)
        var parser = XMPPStreamParser(limits: .init(maxStanzaBytes: 4096, maxDepth: 16, maxAttributes: 16, maxElements: 256))
        for piece in [bytes[1..<cut], bytes[cut...]] {
            guard let events = try? parser.feed(piece) else { return }
            for case .stanza(let stanza) in events {
                let header = "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>"
                let written = stanza.serialized(inheritedNamespace: XMPPNamespace.component)
                var again = XMPPStreamParser()
                let back = try again.feed(Array(header.utf8) + written)
                #expect(back.last == .stanza(stanza), "\(String(decoding: written, as: UTF8.self))")
            }
        }
    }
}
