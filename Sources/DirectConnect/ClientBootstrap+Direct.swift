import NIOCore
import NIOPosix

extension ClientBootstrap {
    /// Connects to `host`, without a name lookup when it is an IP address.
    ///
    /// Why: `connect(host:port:)` resolves even "127.0.0.1" through
    /// getaddrinfo on a dispatch queue, A and AAAA apart; the connection goes
    /// with the first answer and the other arrives later on the loop. When the
    /// loop has shut down by then, NIO logs "Cannot schedule tasks on an
    /// EventLoop that has already shut down" (a crash with SWIFTNIO_STRICT=1,
    /// and in NIO's future). An address needs no lookup, and no thread hop.
    public func connect(hostOrAddress host: String, port: Int) -> EventLoopFuture<any Channel> {
        let literal = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let address = try? SocketAddress(ipAddress: literal, port: port) {
            return connect(to: address)
        }
        return connect(host: host, port: port)
    }
}
