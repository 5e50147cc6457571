import Foundation

/// A small tmpfs the test mounts itself (needs root, which CI has): a disk that
/// fills up, or turns read-only, on purpose.
public struct ScratchMount {
    public let path: String

    public static var canMount: Bool { getuid() == 0 }

    public init(sizeKiB: Int) throws {
        path = try Scratch.directory("mount")
        try Self.run("mount", "-t", "tmpfs", "-o", "size=\(sizeKiB)k", "tmpfs", path)
    }

    public func remountReadOnly() throws { try Self.run("mount", "-o", "remount,ro", path) }
    /// Room again: the same files, a bigger disk.
    public func resize(sizeKiB: Int) throws { try Self.run("mount", "-o", "remount,size=\(sizeKiB)k", path) }
    public func unmount() { try? Self.run("umount", "-l", path) }

    static func run(_ args: String...) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ChildProcess.ChildFailed(description: "\(args.joined(separator: " ")) failed") }
    }
}
