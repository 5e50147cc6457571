// XMPP benchmarks. Not tests: figures beside a reference measured in the same run.
// Usage: swift run -c release XMPPBenchmarks [stanzas]
// stanzas: read a component stream of 300-byte message stanzas (attributes,
// namespaces, entities, a receipt request, a delay) in 64 KiB reads on one
// core, into elements; the reference is the same bytes through libxml2's SAX
// callbacks (FoundationXML's XMLParser) with a delegate that does nothing.
import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif
import XMPPWire

let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='msrp.example.org' id='b1'>"
func stanza(_ i: Int) -> String {
    "<message from='bob@example.org/laptop' to='alice\\40example.com@msrp.example.org' type='chat' id='m-\(i)'>"
        + "<body>db\(i % 10) deploy done in 42 s &amp; all green &lt;3</body>"
        + "<request xmlns='urn:xmpp:receipts'/><origin-id xmlns='urn:xmpp:sid:0' id='o-\(i)'/>"
        + "<delay xmlns='urn:xmpp:delay' stamp='2026-12-05T08:00:00Z'/></message>"
}
let count = Int(CommandLine.arguments.dropFirst().first { Int($0) != nil } ?? "") ?? 200_000
let stream: [UInt8] = {
    var s = Array(header.utf8)
    for i in 0..<count { s += Array(stanza(i).utf8) }
    s += Array("</stream:stream>".utf8)
    return s
}()
let stanzaBytes = (stream.count - header.utf8.count) / count

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

func ourRun() -> Double {
    var parser = XMPPStreamParser()
    var stanzas = 0
    let t0 = ContinuousClock.now
    var i = 0
    while i < stream.count {
        let end = min(stream.count, i + 65_536)
        for case .stanza(let s) in (try? parser.feed(stream[i..<end])) ?? [] { stanzas &+= s.children.count > 0 ? 1 : 0 }
        i = end
    }
    let dt = seconds(ContinuousClock.now - t0)
    precondition(stanzas == count, "read \(stanzas) of \(count)")
    return Double(count) / dt
}

final class NoOp: NSObject, XMLParserDelegate {
    var ends = 0
    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) { ends &+= 1 }
}

func referenceRun() -> Double {
    let data = Data(stream)
    let t0 = ContinuousClock.now
    let parser = XMLParser(data: data)
    parser.shouldProcessNamespaces = true
    let delegate = NoOp()
    parser.delegate = delegate
    _ = parser.parse()
    let dt = seconds(ContinuousClock.now - t0)
    precondition(delegate.ends >= count, "libxml2 read \(delegate.ends) elements")
    return Double(count) / dt
}

var ours: [Double] = []
var reference: [Double] = []
for _ in 0..<5 {
    ours.append(ourRun())
    reference.append(referenceRun())
}
let k = { (x: Double) in String(format: "%.0f k", x / 1000) }
print("xmpp stanzas: \(count) message stanzas of \(stanzaBytes) bytes (\(stream.count / 1_000_000) MB) read into elements on one core in 64 KiB reads: "
    + "\(k(median(ours))) stanzas/s (runs: \(ours.map(k).joined(separator: ", "))); libxml2 SAX, no-op delegate (reference): "
    + "\(k(median(reference))) stanzas/s; ours/reference = \(String(format: "%.2f", median(ours) / median(reference)))  [target >= 200 k stanzas/s]")
