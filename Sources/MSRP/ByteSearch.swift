import CMSRPSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Fast byte searches: a vectorised substring search (`cmsrp_find`, C, AVX2 or
/// SSE2) for end-lines in bodies, and libc's `memchr` for line ends.
enum ByteSearch {
    /// The offset of the first occurrence of `needle` in `haystack`, or nil.
    @inline(__always)
    static func find(_ needle: UnsafeRawBufferPointer, in haystack: UnsafeRawBufferPointer) -> Int? {
        guard needle.count > 0, haystack.count >= needle.count, let h = haystack.baseAddress,
            let n = needle.baseAddress
        else { return nil }
        let hit = cmsrp_find(h, haystack.count, n, needle.count)
        return hit >= 0 ? hit : nil
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
