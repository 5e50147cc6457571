import Foundation

/// The encodings a mail needs to stay within SMTP's rules (7-bit safe, lines of
/// at most 998 octets): quoted-printable and base64 bodies (RFC 2045), encoded
/// words in headers (RFC 2047), and folded header lines (RFC 5322 §2.2.3).
public enum MIMEEncoding {
    /// Quoted-printable of UTF-8 text, CRLF line ends, lines of at most 76 characters.
    public static func quotedPrintable(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        out.reserveCapacity(bytes.count + bytes.count / 8 + 16)
        var lineLength = 0
        var i = 0
        while i <= bytes.count {
            // A line ends at CRLF, CR, LF or the end of the text.
            let b: UInt8? = i < bytes.count ? bytes[i] : nil
            if b == nil || b == 0x0A || b == 0x0D {
                if b == nil { break }
                if b == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 1 }
                out += [0x0D, 0x0A]
                lineLength = 0
                i += 1
                continue
            }
            let c = b ?? 0
            let nextEndsLine = i + 1 >= bytes.count || bytes[i + 1] == 0x0A || bytes[i + 1] == 0x0D
            // Printable ASCII but "=" as itself; white space too, unless it ends the line (RFC 2045 §6.7 (3)).
            let literal = (c >= 33 && c <= 126 && c != 0x3D) || ((c == 0x20 || c == 0x09) && !nextEndsLine)
            let width = literal ? 1 : 3
            if lineLength + width > 75 {
                out += [0x3D, 0x0D, 0x0A]  // soft line break
                lineLength = 0
            }
            if literal {
                out.append(c)
            } else {
                out += [0x3D, hex[Int(c >> 4)], hex[Int(c & 0x0F)]]
            }
            lineLength += width
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Base64 in lines of 76 characters, CRLF ends.
    public static func base64Lines(_ bytes: [UInt8]) -> String {
        let encoded = Data(bytes).base64EncodedString()
        var out = ""
        var i = encoded.startIndex
        while i < encoded.endIndex {
            let j = encoded.index(i, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
            out += encoded[i..<j] + "\r\n"
            i = j
        }
        return out
    }

    /// `text` as it can stand in a header: as is when printable ASCII, else as
    /// RFC 2047 `=?UTF-8?B?...?=` words, each at most 75 characters and never
    /// splitting a character.
    public static func headerText(_ text: String) -> String {
        if text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F }) { return text }
        var words: [String] = []
        var chunk: [UInt8] = []
        // 75 - "=?UTF-8?B?".count - "?=".count = 63 base64 characters = 45 bytes (rounded down to 3).
        for ch in text {
            let bytes = Array(String(ch).utf8).filter { $0 != 0x0D && $0 != 0x0A }
            if chunk.count + bytes.count > 45 {
                words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=") }
        return words.joined(separator: " ")
    }

    /// A display name for an address: a quoted string when it is plain ASCII,
    /// encoded words otherwise.
    public static func displayName(_ name: String) -> String {
        let clean = name.filter { $0 != "\r" && $0 != "\n" }
        if clean.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F }) {
            return "\"" + clean.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return headerText(clean)
    }

    /// `Name: value` folded at white space so that lines stay under 78
    /// characters where possible (and under 998 always), CRLF at the end.
    public static func header(_ name: String, _ value: String) -> String {
        let words = value.split(separator: " ", omittingEmptySubsequences: false)
        var line = name + ":"
        var out = ""
        for w in words {
            if line.utf8.count + 1 + w.utf8.count > 78, line != name + ":" {
                out += line + "\r\n"
                line = ""
            }
            line += " " + w
            // A single word too long for any line (should not happen with encoded words): cut it.
            while line.utf8.count > 998 {
                let cut = line.index(line.startIndex, offsetBy: 990)
                out += line[..<cut] + "\r\n"
                line = " " + line[cut...]
            }
        }
        return out + line + "\r\n"
    }
}
