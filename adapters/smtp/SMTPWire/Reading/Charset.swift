#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Text in a MIME charset made a Swift string, through the C library's iconv:
/// every charset the MIME registry names that glibc knows (ISO-8859-1..16,
/// Windows-125x, KOI8-R/U, ISO-2022-JP, Shift_JIS, GB18030, Big5, ...). Bytes
/// the charset cannot read become U+FFFD, never a lost message.
public enum Charset {
    /// The text of `bytes` in `charset` (a MIME charset name). No charset, or
    /// one named `us-ascii`, is read as UTF-8 when the bytes are UTF-8 (mailers
    /// that forget to label it) and as Windows-1252 otherwise; an unknown
    /// charset the same way.
    public static func decode(_ bytes: [UInt8], charset: String?) -> String {
        let name = normalized(charset)
        if name == nil || name == "UTF-8" || name == "US-ASCII" {
            if let text = String(validating: bytes, as: UTF8.self) { return text }
            if name == "UTF-8" { return String(decoding: bytes, as: UTF8.self) }
            return convert(bytes, from: "WINDOWS-1252") ?? String(decoding: bytes, as: UTF8.self)
        }
        if let name, let text = convert(bytes, from: name) { return text }
        return String(validating: bytes, as: UTF8.self) ?? convert(bytes, from: "WINDOWS-1252") ?? String(decoding: bytes, as: UTF8.self)
    }

    /// The iconv name of a MIME charset: upper case, nil for anything that is
    /// not a plain name (iconv reads `//` suffixes as options).
    static func normalized(_ charset: String?) -> String? {
        guard var name = charset?.trimmingQuotesAndSpaces().uppercased(), !name.isEmpty, name.utf8.count <= 40 else { return nil }
        guard name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.:".unicodeScalars.contains($0)) })
        else { return nil }
        switch name {
        case "ASCII", "ANSI_X3.4-1968", "US", "646": name = "US-ASCII"
        case "UTF8": name = "UTF-8"
        case "LATIN1", "L1": name = "ISO-8859-1"
        // A label RFC 1947-era mailers used for what is really 1252 (WHATWG does the same).
        case "ISO-8859-1", "ISO8859-1", "ISO_8859-1": name = "WINDOWS-1252"
        default: break
        }
        return name
    }

    /// `bytes` converted from `charset` to UTF-8; nil when iconv does not know it.
    static func convert(_ bytes: [UInt8], from charset: String) -> String? {
        let cd = iconv_open("UTF-8", charset)
        guard cd != iconv_t(bitPattern: -1) else { return nil }
        defer { iconv_close(cd) }
        var input = bytes
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2 + 16)
        var chunk = [UInt8](repeating: 0, count: 4096)
        let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]
        input.withUnsafeMutableBufferPointer { inBuf in
            var inPtr = inBuf.baseAddress.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: CChar.self) }
            var inLeft = inBuf.count
            chunk.withUnsafeMutableBufferPointer { outBuf in
                guard let outBase = outBuf.baseAddress else { return }
                while inLeft > 0 {
                    var outPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(outBase).assumingMemoryBound(to: CChar.self)
                    var outLeft = outBuf.count
                    let r = iconv(cd, &inPtr, &inLeft, &outPtr, &outLeft)
                    out.append(contentsOf: UnsafeBufferPointer(start: outBase, count: outBuf.count - outLeft))
                    if r != -1 { break }
                    switch errno {
                    case E2BIG: continue
                    default:
                        // EILSEQ or EINVAL (cut short): one byte the charset cannot read.
                        out += replacement
                        inPtr = inPtr.map { $0 + 1 }
                        inLeft -= 1
                    }
                }
            }
        }
        // A stateful charset (ISO-2022-JP) may owe a shift back; nothing to read after it.
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    func trimmingQuotesAndSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\"" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\"" { s = s.dropLast() }
        return String(s)
    }
}
