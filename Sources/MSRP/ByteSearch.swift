import CMSRPSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Fast substring search over raw bytes: libc's `memmem`, which is vectorised
/// and skips ahead on mismatches, so a body is scanned once at memory speed.
enum ByteSearch {
    /// The offset of the first occurrence of `needle` in `haystack`, or nil.
    @inline(__always)
    static func find(_ needle: UnsafeRawBufferPointer, in haystack: UnsafeRawBufferPointer) -> Int? {
        guard needle.count > 0, haystack.count >= needle.count, let h = haystack.baseAddress,
            let n = needle.baseAddress
        else { return nil }
        guard let hit = cmsrp_memmem(h, haystack.count, n, needle.count) else { return nil }
        return h.distance(to: UnsafeRawPointer(hit))
    }

    /// The offset of the first `byte` in `haystack`, or nil.
    @inline(__always)
    static func find(byte: UInt8, in haystack: UnsafeRawBufferPointer) -> Int? {
        guard let h = haystack.baseAddress, haystack.count > 0,
            let hit = memchr(h, Int32(byte), haystack.count)
        else { return nil }
        return h.distance(to: UnsafeRawPointer(hit))
    }
}
