import IRCWire
import NIOCore

/// Lines from a hostile IRC server, in two reads split at a point taken from
/// the first byte: framing holds at most its limit, every line parses or is
/// refused, a parsed line serialises to one that parses to the same message,
/// its text splits into lines that fit, and the channel roster takes every
/// line without trapping (and never lists a nick in a channel it was told left).
func fuzzIRC(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let cut = max(1, Int(bytes[0]) % size)
    var framer = IRCLineFramer(maxLineBytes: 1024)
    var roster = IRCChannelRoster()
    var buffer = ByteBuffer()
    for piece in [bytes[1..<cut], bytes[cut...]] {
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: piece))
        while let event = framer.next(&buffer) {
            guard case .line(let line) = event else { continue }
            guard let (message, _) = try? IRCParser.parse(line) else { continue }
            roster.apply(message, me: "gw")
            if message.command.uppercased() == "QUIT", let nick = message.sourceParts?.nick, !nick.isEmpty,
               IRCChannelRoster.fold(nick) != "gw" {
                precondition(roster.channels(of: nick).isEmpty, "\(nick) quit but is still in \(roster.channels(of: nick))")
            }
            let again = try? IRCParser.parse(message.serialized)
            precondition(again == message, "round trip changed \(message) into \(String(describing: again))")
            if let text = message.params.last {
                let budget = 16 + Int(bytes[0] % 100)
                for l in IRCTextSplitter(budget: budget, maxLines: 5).split(text) {
                    precondition(l.utf8.count <= budget, "a split line over its budget")
                }
            }
        }
        precondition(buffer.readableBytes <= 1024, "framer kept \(buffer.readableBytes) bytes")
    }
    return 0
}
