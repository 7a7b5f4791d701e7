import Foundation
import HTTPTypes
import Hummingbird

/// A JSON body with a status other than 200 (`201 Created`, `202 Accepted`).
struct Reply<Body: Encodable & Sendable>: ResponseGenerator {
    let status: HTTPResponse.Status
    let body: Body

    init(_ status: HTTPResponse.Status, _ body: Body) {
        self.status = status
        self.body = body
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try JSONCoding.encoder.encode(body, from: request, context: context)
        response.status = status
        return response
    }
}

/// A JSON body with 200.
struct OK<Body: Encodable & Sendable>: ResponseGenerator {
    let body: Body
    init(_ body: Body) { self.body = body }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        try JSONCoding.encoder.encode(body, from: request, context: context)
    }
}

enum JSONCoding {
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return encoder
    }
}
