import Foundation

/// A throwaway ngircd (Debian `ngircd`: plain RFC 2812, no IRCv3 tags) on a
/// loopback port, configured as ../shared/peers/IRC.md says works here.
final class NgircdInstance: @unchecked Sendable {
    let port: Int
    let directory: String
    private let process: ChildProcess

    init() async throws {
        let ngircd = try Peers.require("ngircd", package: "ngircd")
        port = try freePort()
        directory = NSTemporaryDirectory() + "msrpgw-ngircd-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory + "/conf.d", withIntermediateDirectories: true)
        try """
            [Global]
             Name = irc3.test
             Info = msrpgw test
             Listen = 127.0.0.1
             Ports = \(port)
             MotdPhrase = "test"
             AdminInfo1 = t
             AdminInfo2 = t
             AdminEMail = t@localhost
             PidFile = \(directory)/ngircd.pid
            [Limits]
             MaxConnectionsIP = 0
             MaxJoins = 0
             MaxPenaltyTime = 0
             MaxNickLength = 30
            [Options]
             DNS = no
             Ident = no
             PAM = no
             IncludeDir = \(directory)/conf.d
            """.write(toFile: directory + "/ngircd.conf", atomically: true, encoding: .utf8)
        process = try ChildProcess(ngircd, ["-n", "-f", directory + "/ngircd.conf"], name: "ngircd")
        // Ready when the port accepts a connection.
        let deadline = ContinuousClock.now + .seconds(10)
        while !Self.accepts(port) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                process.stop()
                throw ChildProcess.ChildFailed(description: "ngircd did not listen on \(port)\n\(process.stdout.suffix(2000))\(process.stderr.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(30))
        }
    }

    func stop() { process.stop() }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
