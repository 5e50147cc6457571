import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Where a request came from, and so where its responses go (RFC 3261 §18.2.2,
/// with rport behaviour: the source address, not the Via's sent-by).
public enum SIPSource: Sendable, CustomStringConvertible {
    case udp(channel: any Channel, remote: SocketAddress)
    case stream(channel: any Channel, transport: String)

    public var transport: String {
        switch self {
        case .udp: return "UDP"
        case .stream(_, let t): return t
        }
    }

    /// Whether the transport itself retransmits (no SIP timers needed).
    public var isReliable: Bool { if case .udp = self { return false } else { return true } }

    public var remote: SocketAddress? {
        switch self {
        case .udp(_, let r): return r
        case .stream(let c, _): return c.remoteAddress
        }
    }

    public var description: String { "\(transport) \(remote?.description ?? "?")" }

    func send(_ bytes: [UInt8]) {
        switch self {
        case .udp(let channel, let remote):
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: ByteBuffer(bytes: bytes)), promise: nil)
        case .stream(let channel, _):
            channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
        }
    }
}

/// Receives what the transports read: a message, or bytes that were not one.
protocol SIPTransportReceiver: AnyObject, Sendable {
    func receive(_ message: SIPMessage, from source: SIPSource)
    func receiveInvalid(_ error: SIPParseError, from source: SIPSource)
}

/// UDP datagrams in: each is one message.
final class SIPDatagramHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let parser: SIPParser
    weak var receiver: (any SIPTransportReceiver)?

    init(parser: SIPParser, receiver: any SIPTransportReceiver) {
        self.parser = parser
        self.receiver = receiver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        // A keep-alive (CRLF) is not a message.
        if bytes.allSatisfy({ $0 == 0x0D || $0 == 0x0A }) { return }
        let source = SIPSource.udp(channel: context.channel, remote: envelope.remoteAddress)
        do {
            receiver?.receive(try parser.parse(datagram: bytes), from: source)
        } catch {
            receiver?.receiveInvalid(error, from: source)
        }
    }
}

/// A TCP or TLS connection: messages framed by Content-Length.
final class SIPStreamHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let parser: SIPParser
    let transport: String
    weak var receiver: (any SIPTransportReceiver)?
    private var buffer = ByteBuffer()

    init(parser: SIPParser, transport: String, receiver: any SIPTransportReceiver) {
        self.parser = parser
        self.transport = transport
        self.receiver = receiver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        let source = SIPSource.stream(channel: context.channel, transport: transport)
        do {
            while let message = try parser.next(&buffer) { receiver?.receive(message, from: source) }
            buffer.discardReadBytes()
        } catch {
            // A stream that lost its framing cannot be resynchronised: answer if we can, then close.
            receiver?.receiveInvalid(error, from: source)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Nothing read for the idle time-out (`IdleStateHandler` before us).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
