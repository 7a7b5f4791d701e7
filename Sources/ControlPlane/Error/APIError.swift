public import HTTPTypes

/// The one error of the HTTP API. Every failure leaves the server as
/// `{"error": {"code": "…", "message": "…", "request_id": "…"}}` (plus `"field"` for invalid input), with
/// the request id also in the `X-Request-ID` header. `message` is written for the client: it never
/// holds a secret, a stack trace or another organisation's data; unexpected errors become
/// `internal_error` and their detail goes to the log only.
public struct APIError: Error, CustomStringConvertible, Sendable {
    public let status: HTTPResponse.Status
    /// Stable, machine-readable: `validation_failed`, `not_found`, `quota_exceeded`, …
    public let code: String
    public let message: String
    /// The request field at fault, for `validation_failed`.
    public let field: String?
    /// Extra response headers (`Retry-After`, `Allow`, `WWW-Authenticate`).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, field: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public static func validation(_ field: String, _ message: String) -> APIError {
        APIError(.badRequest, code: "validation_failed", message: "\(field): \(message)", field: field)
    }

    public static func badRequest(_ message: String) -> APIError {
        APIError(.badRequest, code: "bad_request", message: message)
    }

    public static func unauthorized(_ message: String = "authentication required: send Authorization: Bearer <access token or API key>", code: String = "unauthorized") -> APIError {
        APIError(.unauthorized, code: code, message: message, headers: [.wwwAuthenticate: "Bearer"])
    }

    public static func forbidden(_ message: String, code: String = "forbidden") -> APIError {
        APIError(.forbidden, code: code, message: message)
    }

    public static func notFound(_ what: String) -> APIError {
        APIError(.notFound, code: "not_found", message: "\(what) not found")
    }

    public static func conflict(_ message: String, code: String = "conflict") -> APIError {
        APIError(.conflict, code: code, message: message)
    }

    public static func tooManyRequests(_ message: String, retryAfter seconds: Int, code: String = "rate_limited") -> APIError {
        APIError(.tooManyRequests, code: code, message: message, headers: [.retryAfter: String(max(seconds, 1))])
    }

    public static func unavailable(_ message: String) -> APIError {
        APIError(.serviceUnavailable, code: "unavailable", message: message)
    }

    static let internalError = APIError(
        .internalServerError, code: "internal_error",
        message: "an unexpected error occurred; report the request id to the operators")
}
