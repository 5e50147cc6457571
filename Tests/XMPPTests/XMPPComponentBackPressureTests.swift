import Foundation
import NIOPosix
import Testing
import TestPeers
import XMPPClient
import XMPPWire

/// A server that sends faster than the bridge reads: the component stops
/// reading at its backlog bound instead of buffering (or dropping), and every
/// stanza arrives, in order, once the reader catches up.
struct XMPPComponentBackPressureTests {
    @Test func aFastServerIsSlowedNotDropped() async throws {
        let count = 20_000
        let flood = (0..<count).map { "<message from='bob@localhost/r' to='a@msrp.test' type='chat' id='f\($0)'><body>x</body></message>" }.joined()
        let server = try await HostileXMPPServer(payload: Array(flood.utf8), closeAfterPayload: false)
        defer { server.stop() }
        let component = XMPPComponent(
            // Liveness checked every second: our own pause must not pass for the
            // server's silence (a reconnect would lose what waits in the socket; a
            // loaded run once paused past the default 60 + 20 s and saw the flood again).
            configuration: XMPPComponentConfiguration(
                host: "127.0.0.1", port: server.port, domain: "msrp.test", secret: "s", pingInterval: .seconds(1), pingTimeout: .seconds(1)),
            group: server.group, backlogPause: 500)
        let run = Task { await component.run() }
        defer { run.cancel() }
        // Nobody reads for a while: the backlog stops near the bound (one read's worth past it).
        // (30 s: a full run on a loaded machine once took more than 10 to connect and read that far.)
        #expect(await until(.seconds(30)) { component.unread >= 500 })
        try await Task.sleep(for: .seconds(3))
        #expect(component.unread < 500 + 2_000, "read on past the bound: \(component.unread) waiting")
        // The reader catches up: all of them, in order, none lost.
        var next = 0
        for await stanza in component.incoming {
            #expect(stanza["id"] == "f\(next)")
            next += 1
            if next == count { break }
        }
        #expect(next == count)
        run.cancel()
        _ = await run.value
    }
}
