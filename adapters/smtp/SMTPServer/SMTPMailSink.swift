/// What the SMTP server asks of whoever takes its mails (the gateway's mail
/// intake). Both answers are what the client hears.
public protocol SMTPMailSink: Sendable {
    /// nil takes the recipient; otherwise the refusal (550 5.1.1, 550 5.7.1, ...).
    func checkRecipient(_ address: String, envelope: SMTPEnvelope) async -> SMTPServerReply?
    /// Stores the mail for the envelope's recipients; a 250 only once it is
    /// durable (the same promise as MSRP's 200).
    func store(_ envelope: SMTPEnvelope, mail: [UInt8]) async -> SMTPServerReply
}
