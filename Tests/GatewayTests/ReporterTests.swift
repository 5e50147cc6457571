import CPIM
import Events
import Foundation
import MSRP
import Testing

@testable import Gateway

/// The Reporter's rules as a table: what a sender is owed for each outcome,
/// given what it asked for. No queue, no sockets.
@Suite struct ReporterTests {
    let reporter = Reporter()

    func delivery(
        successReport: Bool = false, failureReport: FailureReportRequest = .yes, imdn: [String] = [], session: String? = "s1",
        pageModeSender: String? = nil
    ) -> QueuedEvent {
        let origin = EventOrigin(
            sessionID: session, messageID: "m1", fromPath: session == nil ? [] : ["msrp://a.example:1/x;tcp"], pageModeSender: pageModeSender,
            byteCount: 5, successReport: successReport, failureReport: failureReport, imdnMessageID: imdn.isEmpty ? nil : "i1",
            imdnDispositions: imdn)
        return QueuedEvent(
            id: EventID(rawValue: 42), kind: .delivery, state: .leased, adapter: "webhook", target: "https://h.test/x", origin: origin,
            envelope: EventEnvelope(from: "sip:alice@example.com", to: ["sip:ops@gw.example"]), body: .inline([]), parent: nil,
            attempts: 1, nextAttemptAt: Date(), leaseOwner: "w", lastError: nil, proof: nil, statusCode: nil, createdAt: Date(), updatedAt: Date())
    }

    /// (what the sender asked, the outcome, what is owed as kind+status)
    static let table: [(String, Bool, FailureReportRequest, [String], FinalOutcome, [String])] = [
        ("nothing asked, delivered", false, .yes, [], .delivered(proof: "p"), []),
        ("success asked, delivered", true, .yes, [], .delivered(proof: "p"), ["report 200"]),
        ("failure yes, failed", false, .yes, [], .failed(code: 403, reason: "r"), ["report 403"]),
        ("failure partial, failed", false, .partial, [], .failed(code: 408, reason: "r"), ["report 408"]),
        ("failure no, failed", true, .no, [], .failed(code: 403, reason: "r"), []),
        ("positive IMDN, delivered", false, .yes, ["positive-delivery"], .delivered(proof: "p"), ["imdn delivered"]),
        ("negative IMDN only, delivered", false, .yes, ["negative-delivery"], .delivered(proof: "p"), []),
        ("negative IMDN, failed, failure no", false, .no, ["negative-delivery"], .failed(code: 404, reason: "r"), ["imdn failed"]),
        ("both, partial", true, .yes, ["negative-delivery"], .partial(proof: "p", code: 404, reason: "r"), ["report 200", "report 404", "imdn failed"]),
    ]

    @Test func followUpsFollowWhatTheSenderAskedFor() {
        for (name, success, failure, imdn, outcome, expected) in Self.table {
            let owed = reporter.followUps(for: delivery(successReport: success, failureReport: failure, imdn: imdn), outcome: outcome)
            let got = owed.map { "\($0.kind.rawValue) \($0.envelope.headers["status"] ?? $0.envelope.headers["disposition"] ?? "")" }
            #expect(got == expected, "\(name)")
            #expect(owed.allSatisfy { $0.adapter == "msrp" && $0.target == "s1" && $0.parent == EventID(rawValue: 42) }, "\(name)")
        }
    }

    @Test func pageModeGetsOnlyItsIMDNsAsPageModeMessages() {
        let event = delivery(successReport: true, imdn: ["positive-delivery"], session: nil, pageModeSender: "sip:bob@example.com")
        let owed = reporter.followUps(for: event, outcome: .delivered(proof: "p"))
        #expect(owed.map(\.kind) == [.imdn])
        #expect(owed.first?.adapter == "sip-message")
        #expect(owed.first?.target == "sip:bob@example.com")
    }

    @Test func followUpsAreNotOwedForFollowUps() {
        var report = delivery(successReport: true)
        report.kind = .report
        #expect(reporter.followUps(for: report, outcome: .failed(code: 481, reason: "gone")).isEmpty)
    }

    @Test func originRecordsTheSendersRequests() throws {
        let head = MSRPRequestHead(
            transactionID: "t1", method: .send, toPath: [try MSRPURI("msrp://gw.example:2855/s1;tcp")],
            fromPath: [try MSRPURI("msrp://relay.example:2855/r;tcp"), try MSRPURI("msrp://a.example:1/x;tcp")],
            headers: [.messageID("m1"), .successReport(.yes), .failureReport(.partial)])
        let origin = reporter.origin(session: "s1", messageID: "m1", head: head, size: 9, imdn: IMDNRequest(messageID: "i1", dispositions: [.positiveDelivery]))
        #expect(origin.fromPath == ["msrp://relay.example:2855/r;tcp", "msrp://a.example:1/x;tcp"])
        #expect(origin.successReport)
        #expect(origin.failureReport == .partial)
        #expect(origin.imdnDispositions == ["positive-delivery"])
        let quiet = reporter.roomCopy(of: origin)
        #expect(!quiet.successReport && quiet.failureReport == .no && quiet.imdnDispositions.isEmpty)
    }

    @Test func notInRoomReportHonoursFailureReport() {
        let envelope = EventEnvelope(from: "sip:alice@example.com", to: ["sip:carol@example.com"], cc: ["sip:dave@example.com"])
        var origin = EventOrigin(sessionID: "s1", messageID: "m1", failureReport: .yes)
        let report = reporter.notInRoomReport(origin: origin, envelope: envelope, unresolved: ["sip:carol@example.com", "sip:dave@example.com"])
        #expect(report?.envelope.headers["status"] == "427")
        #expect(report?.envelope.to == ["sip:carol@example.com"])
        #expect(report?.envelope.cc == ["sip:dave@example.com"])
        origin.failureReport = .no
        #expect(reporter.notInRoomReport(origin: origin, envelope: envelope, unresolved: ["sip:carol@example.com"]) == nil)
    }

    @Test func repeatedSendIsOwedASuccessReportOnlyOnceDeliveredAndWhenAsked() {
        var stored = delivery(successReport: true)
        let repeatOrigin = stored.origin
        #expect(reporter.duplicateAcknowledgement(of: stored, repeatedBy: repeatOrigin, transactionID: "t2") == nil)  // still pending
        stored.state = .delivered
        let owed = reporter.duplicateAcknowledgement(of: stored, repeatedBy: repeatOrigin, transactionID: "t2")
        #expect(owed?.kind == .report)
        #expect(owed?.envelope.headers["status"] == "200")
        #expect(owed?.dedupeKey != reporter.duplicateAcknowledgement(of: stored, repeatedBy: repeatOrigin, transactionID: "t3")?.dedupeKey)
        var quiet = repeatOrigin
        quiet.successReport = false
        #expect(reporter.duplicateAcknowledgement(of: stored, repeatedBy: quiet, transactionID: "t4") == nil)
    }
}

/// Text the gateway sends (API, IRC, alerts) is UTF-8, and says so.
@Suite struct OutboundTextTests {
    @Test func textTypesDeclareUTF8() {
        let cases: [(String, String)] = [
            ("text/plain", "text/plain;charset=UTF-8"),
            ("text/html", "text/html;charset=UTF-8"),
            ("text/plain; charset=ISO-8859-1", "text/plain; charset=ISO-8859-1"),
            ("TEXT/plain;CHARSET=utf-8", "TEXT/plain;CHARSET=utf-8"),
            ("application/json", "application/json"),
            ("not a type", "not a type"),
        ]
        for (given, expected) in cases {
            let m = OutboundMessage(to: .address("sip:bob@example.com"), text: "Grüße ✓", contentType: given)
            #expect(m.contentType == expected, "\(given)")
        }
        #expect(OutboundMessage(to: .session("s1"), text: "é").contentType == "text/plain;charset=UTF-8")
    }
}
