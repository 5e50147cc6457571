import Foundation

/// `EmbedText INPUT OUTPUT TYPE`: writes a Swift file in which `TYPE.text` is
/// the contents of INPUT, byte for byte. Run by the EmbedDefaults build plugin
/// so that the daemon's embedded defaults are config/msrpgw.toml itself, never
/// a copy kept in step by hand.
let arguments = CommandLine.arguments
guard arguments.count == 4 else {
    FileHandle.standardError.write(Data("usage: EmbedText INPUT OUTPUT TYPE\n".utf8))
    exit(2)
}
let (input, output, type) = (arguments[1], arguments[2], arguments[3])
guard let data = FileManager.default.contents(atPath: input), let text = String(data: data, encoding: .utf8) else {
    FileHandle.standardError.write(Data("EmbedText: cannot read \(input) as UTF-8\n".utf8))
    exit(1)
}
// A raw string with enough #s that nothing in the text can end it or escape.
var hashes = "#"
while text.contains("\"" + hashes) || text.contains("\\" + hashes) { hashes += "#" }
let source = """
    // Generated from \(URL(fileURLWithPath: input).lastPathComponent) by the EmbedDefaults plugin: do not edit.
    enum \(type) {
        static let text = \(hashes)\"\"\"
    \(text)
    \"\"\"\(hashes)
    }

    """
do {
    try source.write(toFile: output, atomically: true, encoding: .utf8)
} catch {
    FileHandle.standardError.write(Data("EmbedText: cannot write \(output): \(error)\n".utf8))
    exit(1)
}
