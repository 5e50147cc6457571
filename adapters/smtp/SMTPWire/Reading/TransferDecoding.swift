/// Content-Transfer-Encoding (RFC 2045 §6) undone, leniently: what a mailer
/// got slightly wrong still reads (characters outside the alphabet skipped,
/// a stray `=` kept), since the alternative is losing a reply.
public enum TransferDecoding {
    public static func decode(_ body: ArraySlice<UInt8>, encoding: String?) -> [UInt8] {
        switch encoding?.trimmingQuotesAndSpaces().lowercased() {
        case "base64": base64(body)
        case "quoted-printable": quotedPrintable(body)
        default: Array(body)  // 7bit, 8bit, binary, or unknown: as it is
        }
    }

    public static func base64(_ body: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for b in body {
            let v: UInt8
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = b - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = b - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = b - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"), UInt8(ascii: "-"): v = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): v = 63
            case UInt8(ascii: "="): return out  // padding: the end
            default: continue
            }
            acc = (acc << 6) | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }

    /// Quoted-printable, and with `underscoreIsSpace` the Q encoding of RFC 2047 words.
    public static func quotedPrintable(_ body: ArraySlice<UInt8>, underscoreIsSpace: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count)
        var i = body.startIndex
        while i < body.endIndex {
            let b = body[i]
            if b == UInt8(ascii: "=") {
                let rest = body[(i + 1)...]
                // Soft line break: "=" then optional white space then CRLF or LF.
                var j = rest.startIndex
                while j < rest.endIndex, rest[j] == 0x20 || rest[j] == 0x09 { j += 1 }
                if j < rest.endIndex, rest[j] == 0x0A {
                    i = j + 1
                    continue
                }
                if j + 1 < rest.endIndex, rest[j] == 0x0D, rest[j + 1] == 0x0A {
                    i = j + 2
                    continue
                }
                if j == rest.endIndex {
                    break
                }
                if i + 2 < body.endIndex, let hi = hex(body[i + 1]), let lo = hex(body[i + 2]) {
                    out.append(hi << 4 | lo)
                    i += 3
                    continue
                }
                out.append(b)
            } else if underscoreIsSpace, b == UInt8(ascii: "_") {
                out.append(0x20)
            } else {
                out.append(b)
            }
            i += 1
        }
        return out
    }

    static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
