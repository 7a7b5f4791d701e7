import Foundation
import Hummingbird
import Storage

/// A JSON request body. Decoding is strict: the body must be one JSON object, every key must be one the
/// route knows (`fields`), and each value must have the right type; then `validate()` checks lengths
/// and formats. Every failure is a `400` naming the field.
protocol JSONInput: Decodable {
    static var fields: Set<String> { get }
    func validate() throws(APIError)
}

extension JSONInput {
    func validate() throws(APIError) {}
}

extension Request {
    func decodeInput<Input: JSONInput>(_ type: Input.Type, context: APIRequestContext) async throws -> Input {
        try await decodeInput(type, context: context) { _ in }
    }

    /// As `decodeInput(_:context:)`, with `transform` rewriting the JSON object before it is decoded (to
    /// resolve references such as a member's email to an id).
    func decodeInput<Input: JSONInput>(
        _ type: Input.Type, context: APIRequestContext, transform: (inout [String: Any]) async throws -> Void
    ) async throws -> Input {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: context.maxUploadSize)
        } catch {
            throw APIError(.contentTooLarge, code: "payload_too_large", message: "the JSON body is larger than \(context.maxUploadSize) bytes")
        }
        let data = Data(buffer.readableBytesView)
        if data.isEmpty {
            throw APIError(.badRequest, code: "invalid_json", message: "the request needs a JSON object body")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw APIError(.badRequest, code: "invalid_json", message: "the body is not valid JSON")
        }
        guard let dictionary = object as? [String: Any] else {
            throw APIError(.badRequest, code: "invalid_json", message: "the body must be a JSON object")
        }
        if let unknown = dictionary.keys.sorted().first(where: { !Input.fields.contains($0) }) {
            throw APIError.validation(unknown, "unknown field; allowed: \(Input.fields.sorted().joined(separator: ", "))")
        }
        var rewritten = dictionary
        try await transform(&rewritten)
        let input: Input
        do {
            input = try JSONDecoder().decode(Input.self, from: try JSONSerialization.data(withJSONObject: rewritten))
        } catch let error as DecodingError {
            throw APIError(decoding: error)
        }
        try input.validate()
        return input
    }
}

extension APIError {
    init(decoding error: DecodingError) {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
                .replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            self = .validation(field, "is required")
        case .valueNotFound(_, let context):
            self = .validation(path(context.codingPath), "must not be null")
        case .typeMismatch(let type, let context):
            let name = String(describing: type)
            let expected =
                name == "String" ? "a string"
                : name.hasPrefix("Int") ? "an integer"
                : name == "Bool" ? "true or false"
                : name.hasPrefix("Array") ? "an array"
                : name.hasPrefix("Dictionary") ? "an object" : "of another type"
            self = .validation(path(context.codingPath), "must be \(expected)")
        case .dataCorrupted(let context):
            let detail = context.debugDescription
            self = .validation(path(context.codingPath), detail.isEmpty ? "is invalid" : "is invalid (\(detail))")
        @unknown default:
            self = .badRequest("the body could not be decoded")
        }
    }
}

/// Checks shared by the inputs.
enum Validate {
    static func email(_ value: String, field: String = "email") throws(APIError) -> String {
        let email = value.trimmingCharacters(in: .whitespaces).lowercased()
        guard email.utf8.count <= 254 else { throw APIError.validation(field, "must be at most 254 characters") }
        guard email.range(of: #"^[^@\s]+@[^@\s]+\.[^@\s.]+$"#, options: .regularExpression) != nil else {
            throw APIError.validation(field, "must be an e-mail address like name@example.com")
        }
        return email
    }

    static func text(_ value: String, field: String, maxLength: Int = 200) throws(APIError) -> String {
        let text = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw APIError.validation(field, "must not be empty") }
        guard text.count <= maxLength else { throw APIError.validation(field, "must be at most \(maxLength) characters") }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError.validation(field, "must not contain control characters")
        }
        return text
    }

    static func password(_ value: String, field: String = "password") throws(APIError) {
        guard value.count >= PasswordHasher.minimumLength else {
            throw APIError.validation(field, "must be at least \(PasswordHasher.minimumLength) characters")
        }
        guard value.utf8.count <= PasswordHasher.maximumBytes else {
            throw APIError.validation(field, "must be at most \(PasswordHasher.maximumBytes) bytes (bcrypt reads no more)")
        }
    }

    static func role(_ value: String, field: String = "role") throws(APIError) -> MemberRole {
        guard let role = MemberRole(rawValue: value) else {
            throw APIError.validation(field, "must be one of owner, admin, member, viewer")
        }
        return role
    }

    static func slug(_ value: String, field: String = "slug") throws(APIError) {
        guard value.range(of: "^[a-z0-9][a-z0-9-]{0,62}$", options: .regularExpression) != nil else {
            throw APIError.validation(field, "must be 1-63 lower-case letters, digits and '-', starting with a letter or digit")
        }
    }
}
