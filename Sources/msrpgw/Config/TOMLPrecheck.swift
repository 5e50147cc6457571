/// What TOMLKit's parser (toml++) must never see: it aborts the process (an
/// assertion; undefined behaviour where assertions are off) instead of
/// reporting an error when a table header's first key does not start like a
/// key (`[~a]`, `[ #a]`, `[é]`) or an array's brackets are closed by `}`
/// (`a = [1,}`): both found by MutationFuzzTests. Outside strings
/// and comments TOML allows only ASCII anyway. Checked first, with the line and
/// column, so that a bad configuration is a clear error and never a crash.
enum TOMLPrecheck {
    static func check(_ text: String) throws(ConfigError) {
        enum State { case code, comment, basic, literal, multiBasic, multiLiteral }
        var state = State.code
        let b = Array(text.utf8)
        var i = 0, line = 1, column = 1
        // Inside a value (after `=`), `[` and `{` open arrays and inline tables;
        // a `[` that starts a line outside any value is a table header.
        var inValue = false, lineStart = true
        var open: [UInt8] = []  // the arrays and inline tables the value is in
        var depth: Int { open.count }
        func at(_ s: String) -> Bool { b[i...].starts(with: s.utf8) }
        func isKeyStart(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D || c == 0x22 || c == 0x27
        }
        while i < b.count {
            let c = b[i]
            var step = 1
            switch state {
            case .code:
                if c >= 0x80 || (c < 0x20 && c != 0x09 && c != 0x0A && c != 0x0D) || c == 0x7F {
                    throw ConfigError("TOML: \(c >= 0x80 ? "a non-ASCII character" : "a control character") outside a string (line \(line), column \(column))")
                }
                if c == UInt8(ascii: "["), lineStart, !inValue, depth == 0 {
                    // A table header: its first key must start like one.
                    var j = i + 1
                    if j < b.count, b[j] == UInt8(ascii: "[") { j += 1 }
                    while j < b.count, b[j] == 0x20 || b[j] == 0x09 { j += 1 }
                    guard j < b.count, isKeyStart(b[j]) else {
                        throw ConfigError("TOML: a table header must begin with a key (line \(line), column \(column))")
                    }
                }
                if c == 0x0A {
                    if depth == 0 { inValue = false }
                    lineStart = true
                } else if c != 0x20, c != 0x09, c != 0x0D {
                    lineStart = false
                }
                if c == UInt8(ascii: "=") { inValue = true }
                if inValue, c == UInt8(ascii: "[") || c == UInt8(ascii: "{") { open.append(c) }
                if depth > 0, c == UInt8(ascii: "]") || c == UInt8(ascii: "}") {
                    // toml++ also aborts on a `}` where an array's next value belongs.
                    let opener = open.removeLast()
                    guard (opener == UInt8(ascii: "[")) == (c == UInt8(ascii: "]")) else {
                        throw ConfigError("TOML: `\(Character(Unicode.Scalar(c)))` closes `\(Character(Unicode.Scalar(opener)))` (line \(line), column \(column))")
                    }
                }
                if c == UInt8(ascii: "#") {
                    state = .comment
                } else if at("\"\"\"") {
                    (state, step) = (.multiBasic, 3)
                } else if at("'''") {
                    (state, step) = (.multiLiteral, 3)
                } else if c == UInt8(ascii: "\"") {
                    state = .basic
                } else if c == UInt8(ascii: "'") {
                    state = .literal
                }
            case .comment:
                if c == 0x0A {
                    state = .code
                    if depth == 0 { inValue = false }
                    lineStart = true
                }
            case .basic:
                if c == UInt8(ascii: "\\") {
                    step = 2
                } else if c == UInt8(ascii: "\"") || c == 0x0A {
                    state = .code
                }
            case .literal:
                if c == UInt8(ascii: "'") || c == 0x0A { state = .code }
            case .multiBasic:
                if c == UInt8(ascii: "\\") {
                    step = 2
                } else if at("\"\"\"") {
                    (state, step) = (.code, 3)
                }
            case .multiLiteral:
                if at("'''") { (state, step) = (.code, 3) }
            }
            for k in i..<min(b.count, i + step) {
                if b[k] == 0x0A { (line, column) = (line + 1, 1) } else if b[k] & 0xC0 != 0x80 { column += 1 }
            }
            i += step
        }
    }
}
