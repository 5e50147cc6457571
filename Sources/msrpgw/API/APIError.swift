import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An API failure: the status and a message, sent as `{"error": "..."}`.
struct APIError: Error, HTTPResponseError {
    var status: HTTPResponse.Status
    var message: String

    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    var headers: HTTPFields { [.contentType: "application/json"] }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = (try? JSONEncoder().encode(["error": message])) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// A JSON response.
func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}

/// Reads a JSON body of at most `limit` bytes into `T`: 413 when larger, 415
/// when not JSON, 400 with the decoder's complaint when malformed.
func decodeJSON<T: Decodable>(_ type: T.Type, from request: Request, limit: Int = 256 * 1024) async throws -> T {
    if let ct = request.headers[.contentType], !ct.lowercased().hasPrefix("application/json") {
        throw APIError(.unsupportedMediaType, "expected Content-Type: application/json, got \(ct)")
    }
    let body = try await readBody(request, limit: limit)
    do {
        return try JSONDecoder().decode(T.self, from: Data(buffer: body))
    } catch let DecodingError.keyNotFound(key, _) {
        throw APIError(.badRequest, "missing field \(key.stringValue)")
    } catch let DecodingError.typeMismatch(_, ctx) {
        throw APIError(.badRequest, "wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)")
    } catch let DecodingError.valueNotFound(_, ctx) {
        throw APIError(.badRequest, "null at \(ctx.codingPath.map(\.stringValue).joined(separator: "."))")
    } catch {
        throw APIError(.badRequest, "malformed JSON")
    }
}

func readBody(_ request: Request, limit: Int) async throws -> ByteBuffer {
    do {
        return try await request.body.collect(upTo: limit)
    } catch is NIOTooManyBytesError {
        throw APIError(.contentTooLarge, "body over \(limit) bytes")
    }
}
