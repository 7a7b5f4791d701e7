import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
public import Storage
import Synchronization

/// The outermost middleware: gives every response its `X-Request-ID`, turns every error into the one
/// error shape (`404` and `405` included), hides the detail of unexpected errors behind
/// `internal_error`, and logs one line per request. Log lines carry the request id (Hummingbird's
/// `hb.request.id` metadata) and the route template, never the raw path: paths may hold tokens.
struct EdgeMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let routes: RouteTable

    static let requestIDHeader = HTTPField.Name("X-Request-ID")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = errorResponse(for: error, request: request, context: context)
        }
        response.headers[Self.requestIDHeader] = context.requestID
        let elapsed = ContinuousClock.now - started
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.info(
            "request",
            metadata: [
                "http.method": "\(request.method.rawValue)",
                "http.route": "\(context.endpointPath ?? "unmatched")",
                "http.status": "\(response.status.code)",
                "duration_ms": "\(String(format: "%.1f", milliseconds))",
            ])
        return response
    }

    func errorResponse(for error: any Error, request: Request, context: Context) -> Response {
        let apiError: APIError
        switch error {
        case let error as APIError:
            apiError = error
        case let error as QuotaError:
            apiError = APIError(quota: error)
        case let error as HTTPError where error.status == .notFound && context.endpointPath == "NotFound":
            // No route matched: a known path with another method is a 405.
            let allowed = routes.methods(forPath: request.uri.path)
            if allowed.isEmpty {
                apiError = APIError(.notFound, code: "not_found", message: "no route matches \(request.method.rawValue) on this path")
            } else {
                apiError = APIError(
                    .methodNotAllowed, code: "method_not_allowed",
                    message: "\(request.method.rawValue) is not allowed here; allowed: \(allowed.joined(separator: ", "))",
                    headers: [.allow: allowed.joined(separator: ", ")])
            }
        case let error as HTTPError:
            apiError = APIError(httpError: error)
        default:
            context.logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            apiError = .internalError
        }
        return apiError.response(requestID: context.requestID)
    }
}

extension APIError {
    /// Errors Hummingbird raises itself (body too large, bad parameters, …).
    init(httpError: HTTPError) {
        let code: String
        switch httpError.status {
        case .badRequest: code = "bad_request"
        case .unauthorized: code = "unauthorized"
        case .forbidden: code = "forbidden"
        case .notFound: code = "not_found"
        case .contentTooLarge: code = "payload_too_large"
        case .unsupportedMediaType: code = "unsupported_media_type"
        default: code = httpError.status.code >= 500 ? "internal_error" : "http_\(httpError.status.code)"
        }
        let message = httpError.body ?? httpError.status.reasonPhrase.lowercased()
        self.init(httpError.status, code: code, message: message, headers: httpError.headers)
    }

    /// The HTTP form of a quota refusal: 402 naming the limit and the usage, 429 with `Retry-After`,
    /// 403 for a read-only organisation, 413 for a file over the plan's size.
    public init(quota error: QuotaError) {
        switch error.code {
        case .limitExceeded:
            self.init(HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required"), code: error.code.rawValue, message: error.message)
        case .rateLimited:
            self.init(.tooManyRequests, code: error.code.rawValue, message: error.message,
                      headers: [.retryAfter: String(error.retryAfterSeconds ?? 60)])
        case .readOnly:
            self.init(.forbidden, code: error.code.rawValue, message: error.message)
        case .fileTooLarge:
            self.init(.contentTooLarge, code: error.code.rawValue, message: error.message)
        }
    }

    struct Body: Encodable {
        struct Detail: Encodable {
            let code: String
            let message: String
            let requestID: String
            let field: String?
            enum CodingKeys: String, CodingKey { case code, message, requestID = "request_id", field }
        }
        let error: Detail
    }

    func response(requestID: String) -> Response {
        let body = Body(error: .init(code: code, message: message, requestID: requestID, field: field))
        let data = (try? JSONEncoder().encode(body)) ?? Data(#"{"error":{"code":"internal_error","message":"","request_id":""}}"#.utf8)
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.contentLength] = String(data.count)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The registered routes (method and path template), filled once the router is built: the 405 check
/// and the OpenAPI test read it.
final class RouteTable: Sendable {
    private let entries = Mutex<[(method: String, components: [Substring])]>([])

    func set(_ routes: [(method: String, path: String)]) {
        entries.withLock { $0 = routes.map { ($0.method, $0.path.split(separator: "/")) } }
    }

    /// Methods registered for templates that match `path` (`{name}` matches any one segment).
    func methods(forPath path: String) -> [String] {
        let segments = path.split(separator: "/")
        return entries.withLock { entries in
            let methods = entries.filter { entry in
                entry.components.count == segments.count
                    && zip(entry.components, segments).allSatisfy { template, segment in
                        template.first == "{" || template == segment
                    }
            }.map(\.method)
            return Array(Set(methods)).sorted()
        }
    }
}
