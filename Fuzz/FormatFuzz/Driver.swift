#if canImport(Glibc)
    import Glibc
#endif

/// Which format this run fuzzes: MSRPGW_FUZZ_FORMAT=cpim (default), sdp, smtp, sip, irc, xmpp, mail or smtpd.
let fuzzFormat = getenv("MSRPGW_FUZZ_FORMAT").map { String(cString: $0) } ?? "cpim"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    switch fuzzFormat {
    case "sdp": return fuzzSDP(data, size)
    case "smtp": return fuzzSMTPReplies(data, size)
    case "sip": return fuzzSIP(data, size)
    case "irc": return fuzzIRC(data, size)
    case "xmpp": return fuzzXMPP(data, size)
    case "mail": return fuzzMail(data, size)
    case "smtpd": return fuzzSMTPServer(data, size)
    default: return fuzzCPIM(data, size)
    }
}

// As in MSRPParserFuzz: SwiftPM links with `--defsym main=FormatFuzz_main`, so
// this hands over to libFuzzer's documented driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer, Int) -> CInt
) -> Int32

@_cdecl("FormatFuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data, size) }
}
