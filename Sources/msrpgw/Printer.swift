import Foundation
import MSRP
import MSRPTransport
import NIOConcurrencyHelpers

/// Writes one line per event to standard output, flushing as it goes (scripts read it).
enum Printer {
    private static let lock = NIOLock()

    static func line(_ s: String) {
        lock.withLock {
            FileHandle.standardOutput.write(Data((s + "\n").utf8))
        }
    }

    static func describe(_ m: AssembledMessage) -> String {
        let type = m.head.headers.contentType?.description ?? "-"
        var text = ""
        if case .memory(let b) = m.body, m.size <= 2048, let s = String(validating: b.readableBytesView, as: UTF8.self) {
            text = " " + s.replacingOccurrences(of: "\r\n", with: "\\r\\n").replacingOccurrences(of: "\n", with: "\\n")
        }
        return "message \(m.messageID) \(m.size) bytes \(type)\(text)"
    }
}

/// A session delegate that prints everything and accepts every message.
final class PrintingDelegate: MSRPSessionDelegate {
    let name: String
    let sendSuccessReports: Bool

    init(name: String, sendSuccessReports: Bool) {
        self.name = name
        self.sendSuccessReports = sendSuccessReports
    }

    func session(_ session: MSRPSession, didReceive message: MSRPIncomingMessage) {
        Printer.line("[\(name)] received \(Printer.describe(message.message))")
        message.acknowledgement.accept()
        if case .file(let path) = message.message.body { try? FileManager.default.removeItem(atPath: path) }
        if sendSuccessReports, message.successReport == .yes {
            let report = MSRPReportBuilder(reportingOn: message.head, local: session.localURI).success(range: message.message.range)
            try? session.sendReport(report)
            Printer.line("[\(name)] sent REPORT 000 200 for \(message.message.messageID) (\(message.message.range))")
        }
    }

    func session(_ session: MSRPSession, didReceiveReport report: MSRPRequestHead) {
        Printer.line("[\(name)] REPORT for \(report.headers.messageID ?? "?"): \(report.headers.status?.description ?? "no status") \(report.headers.byteRange?.description ?? "")")
    }

    func sessionDidClose(_ session: MSRPSession, reason: MSRPSessionCloseReason) {
        Printer.line("[\(name)] session \(session.id) closed (\(reason))")
    }
}
