import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Where the bytes of an outgoing message come from: memory, a file, or any
/// producer that can hand out a range on demand (so a 1 GiB message never sits
/// in memory whole).
public protocol MSRPBodySource: Sendable {
    var size: Int64 { get }
    /// `length` bytes starting at `offset` (0-based).
    func read(offset: Int64, length: Int, allocator: ByteBufferAllocator) throws -> ByteBuffer
}

public struct MemoryBodySource: MSRPBodySource {
    public let buffer: ByteBuffer
    public init(_ buffer: ByteBuffer) { self.buffer = buffer }
    public var size: Int64 { Int64(buffer.readableBytes) }
    public func read(offset: Int64, length: Int, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        buffer.getSlice(at: buffer.readerIndex + Int(offset), length: length) ?? ByteBuffer()
    }
}

/// Reads a file with pread; the file must not change while it is sent.
public struct FileBodySource: MSRPBodySource {
    public struct ReadError: Error, CustomStringConvertible {
        public var path: String
        public var errno: Int32
        public var description: String { "cannot read \(path): errno \(errno)" }
    }

    public let path: String
    public let size: Int64

    public init(path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw ReadError(path: path, errno: errno) }
        self.path = path
        self.size = Int64(st.st_size)
    }

    public func read(offset: Int64, length: Int, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ReadError(path: path, errno: errno) }
        defer { close(fd) }
        var buffer = allocator.buffer(capacity: length)
        let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { ptr in
            max(0, pread(fd, ptr.baseAddress, length, off_t(offset)))
        }
        guard n == length else { throw ReadError(path: path, errno: errno) }
        return buffer
    }
}

/// `prefix` followed by another source: a CPIM wrapper around a body on disk,
/// without reading the body into memory.
public struct PrefixedBodySource: MSRPBodySource {
    public let prefix: ByteBuffer
    public let rest: any MSRPBodySource

    public init(prefix: ByteBuffer, rest: any MSRPBodySource) {
        self.prefix = prefix
        self.rest = rest
    }

    public var size: Int64 { Int64(prefix.readableBytes) + rest.size }

    public func read(offset: Int64, length: Int, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let p = Int64(prefix.readableBytes)
        guard offset < p else { return try rest.read(offset: offset - p, length: length, allocator: allocator) }
        let fromPrefix = min(length, Int(p - offset))
        var out = prefix.getSlice(at: prefix.readerIndex + Int(offset), length: fromPrefix) ?? ByteBuffer()
        if length > fromPrefix {
            var tail = try rest.read(offset: 0, length: length - fromPrefix, allocator: allocator)
            out.writeBuffer(&tail)
        }
        return out
    }
}
