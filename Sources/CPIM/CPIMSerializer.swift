extension CPIMMessage {
    /// The message on the wire: message headers (values escaped), a blank line,
    /// the MIME headers, a blank line, the content. CRLF line ends.
    public var serialized: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + content.count)
        for h in headers {
            out += h.name.utf8
            out.append(UInt8(ascii: ":"))
            for (k, v) in h.parameters.sorted(by: { $0.key < $1.key }) {
                out += ";\(k)=\(v)".utf8
            }
            out.append(0x20)
            out += escapeHeaderValue(h.value).utf8
            out += [0x0D, 0x0A]
        }
        out += [0x0D, 0x0A]
        for h in contentHeaders {
            out += "\(h.name): \(h.value.replacingCRLF())\r\n".utf8
        }
        out += [0x0D, 0x0A]
        out += content
        return out
    }

    /// A CPIM message with the usual headers; `namespaces` adds `NS` lines.
    public static func make(
        from: CPIMAddress, to: [CPIMAddress], cc: [CPIMAddress] = [], dateTime: String? = nil,
        subject: CPIMSubject? = nil, namespaces: [(prefix: String, uri: String)] = [], extraHeaders: [CPIMHeader] = [],
        contentType: String, contentHeaders: [CPIMHeader] = [], content: [UInt8]
    ) -> CPIMMessage {
        var headers = [CPIMHeader(name: "From", value: from.description)]
        headers += to.map { CPIMHeader(name: "To", value: $0.description) }
        headers += cc.map { CPIMHeader(name: "cc", value: $0.description) }
        if let dateTime { headers.append(CPIMHeader(name: "DateTime", value: dateTime)) }
        if let subject {
            headers.append(CPIMHeader(name: "Subject", value: subject.text, parameters: subject.language.map { ["lang": $0] } ?? [:]))
        }
        headers += namespaces.map { CPIMHeader(name: "NS", value: "\($0.prefix) <\($0.uri)>") }
        headers += extraHeaders
        return CPIMMessage(
            headers: headers,
            contentHeaders: [CPIMHeader(name: "Content-Type", value: contentType)] + contentHeaders,
            content: content)
    }
}

extension String {
    /// MIME header values cannot hold line breaks: they become spaces.
    func replacingCRLF() -> String {
        String(map { $0 == "\r" || $0 == "\n" || $0 == "\r\n" ? " " : $0 })
    }
}
