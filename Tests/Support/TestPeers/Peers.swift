import Foundation

/// Real peers from Debian packages. A test that needs a missing one is skipped
/// with a message naming the package, unless MSRPGW_REQUIRE_PEERS=1 (CI), where
/// it runs and fails on the first `Peers.require`.
public enum Peers {
    public static var required: Bool { ProcessInfo.processInfo.environment["MSRPGW_REQUIRE_PEERS"] == "1" }

    public static func path(of binary: String) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin"
        for d in dirs.split(separator: ":") {
            let p = "\(d)/\(binary)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// For `.enabled(if:)`: run when the peer is there, or when peers are required.
    public static func available(_ binary: String) -> Bool { path(of: binary) != nil || required }

    /// The peer's path, or a failure naming the Debian package.
    public static func require(_ binary: String, package: String) throws -> String {
        guard let p = path(of: binary) else {
            throw PeerMissing(description: "\(binary) is not installed: apt-get install \(package) (MSRPGW_REQUIRE_PEERS=1 makes this a failure)")
        }
        return p
    }

    public struct PeerMissing: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }
}
