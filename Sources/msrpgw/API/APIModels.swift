import Events
import Foundation
import Gateway
import Queue

/// `POST /v1/messages`.
struct MessageRequest: Decodable {
    /// A live session id, or
    var session: String?
    /// a route address or an MSRP peer address.
    var to: String?
    var text: String
    var content_type: String?
    /// A system message (no responses, no reports) rather than a chat message.
    var system: Bool?
    var subject: String?
    var from: String?
}

struct EnqueuedResponse: Encodable {
    var ids: [String]
}

/// An event as the API shows it.
struct EventView: Encodable {
    struct Origin: Encodable {
        var session: String?
        var message_id: String?
        var from_path: String?
        var byte_count: Int64?
        var success_report: Bool
        var failure_report: String
        var imdn_message_id: String?
        var imdn_dispositions: [String]
    }

    struct Envelope: Encodable {
        var from: String?
        var to: [String]
        var cc: [String]
        var subject: String?
        var datetime: String?
        var content_type: String
        var headers: [String: String]
    }

    var id: String
    var kind: String
    var state: String
    var adapter: String
    var target: String
    var parent: String?
    var attempts: Int
    var next_attempt_at: Date
    var lease_owner: String?
    var last_error: String?
    var proof: String?
    var status_code: Int?
    var body_size: Int64
    var created_at: Date
    var updated_at: Date
    var origin: Origin
    var envelope: Envelope

    init(_ e: QueuedEvent) {
        id = e.id.description
        kind = e.kind.rawValue
        state = e.state.rawValue
        adapter = e.adapter
        target = e.target
        parent = e.parent?.description
        attempts = e.attempts
        next_attempt_at = e.nextAttemptAt
        lease_owner = e.leaseOwner
        last_error = e.lastError
        proof = e.proof
        status_code = e.statusCode
        body_size = e.body.size
        created_at = e.createdAt
        updated_at = e.updatedAt
        origin = Origin(
            session: e.origin.sessionID, message_id: e.origin.messageID, from_path: e.origin.fromPath.isEmpty ? e.origin.pageModeSender : e.origin.fromPath.joined(separator: " "), byte_count: e.origin.byteCount,
            success_report: e.origin.successReport, failure_report: e.origin.failureReport.rawValue, imdn_message_id: e.origin.imdnMessageID,
            imdn_dispositions: e.origin.imdnDispositions)
        envelope = Envelope(
            from: e.envelope.from, to: e.envelope.to, cc: e.envelope.cc, subject: e.envelope.subject, datetime: e.envelope.dateTime,
            content_type: e.envelope.contentType, headers: e.envelope.headers)
    }
}

struct SessionView: Encodable {
    var id: String
    var local_uri: String
    var remote_path: [String]
    var peer: String?
    var route: String?
    /// Known on the session's own node only.
    var connected: Bool?
    var created_at: Date
    /// The node holding it, where several share the queue.
    var node: Int?

    init(_ s: GatewaySession, node: Int?) {
        id = s.id
        local_uri = s.msrp.localURI.description
        remote_path = s.msrp.remotePath.map(\.description)
        peer = s.peerAddress
        route = s.route
        connected = s.msrp.connection != nil
        created_at = s.createdAt
        self.node = node
    }

    /// Another node's session, from the cluster's directory.
    init(_ s: ClusterSession) {
        id = s.id
        local_uri = s.localURI
        remote_path = s.remotePath
        peer = s.peer
        route = s.route
        created_at = s.createdAt
        node = s.node
    }
}

struct HealthView: Encodable {
    var status: String
    var sessions: Int
    var queued: Int
    var dead: Int
    var oldest_due_seconds: Double?
}
