import Foundation
import Hummingbird
import Storage

/// `GET /v1/orgs/{org}/audit-log?action=&actor=&since=&until=&cursor=&limit=` (admins and owners),
/// newest first. `cursor` is the `next_cursor` of the previous page.
struct AuditLogController {
    let services: APIServices

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.get("audit-log", use: list)
    }

    struct EntryBody: Encodable, Sendable {
        struct Actor: Encodable, Sendable {
            let type: AuditActorType
            let id: UUID?
            let label: String?
        }
        struct Target: Encodable, Sendable {
            let type: String
            let id: String
        }
        let id: String
        let time: Date
        let actor: Actor
        let action: String
        let target: Target?
        let ip: String?
        let userAgent: String?
        let requestID: String?
        let details: [String: String]

        init(_ record: AuditRecord) {
            let entry = record.entry
            id = String(record.id)
            time = record.createdAt
            actor = Actor(type: entry.actorType, id: entry.actorID, label: entry.actorLabel)
            action = entry.action
            target = entry.targetType.map { Target(type: $0, id: entry.targetID ?? "") }
            ip = entry.ip
            userAgent = entry.userAgent
            requestID = entry.requestID
            details = entry.details
        }

        enum CodingKeys: String, CodingKey {
            case id, time, actor, action, target, ip, userAgent = "user_agent", requestID = "request_id", details
        }
    }

    struct Page: Encodable, Sendable {
        let entries: [EntryBody]
        let nextCursor: String?
        enum CodingKeys: String, CodingKey { case entries, nextCursor = "next_cursor" }
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> OK<Page> {
        let access = try context.require(.auditRead)
        let parameters = request.uri.queryParameters
        func date(_ name: String) throws(APIError) -> Date? {
            guard let raw = parameters[name[...]].map(String.init), !raw.isEmpty else { return nil }
            guard let date = try? Date(raw, strategy: .iso8601) else {
                throw APIError.validation(name, "must be an ISO 8601 time like 2025-01-31T12:00:00Z")
            }
            return date
        }
        func text(_ name: String) throws(APIError) -> String? {
            guard let raw = parameters[name[...]].map(String.init), !raw.isEmpty else { return nil }
            guard raw.count <= 200 else { throw APIError.validation(name, "must be at most 200 characters") }
            return raw
        }
        var query = AuditQuery(action: try text("action"), actor: try text("actor"), since: try date("since"), until: try date("until"))
        if let cursor = try text("cursor") {
            guard let id = Int64(cursor), id > 0 else { throw APIError.validation("cursor", "must be the next_cursor of a previous page") }
            query.beforeID = id
        }
        if let limit = try text("limit") {
            guard let value = Int(limit), (1...200).contains(value) else { throw APIError.validation("limit", "must be between 1 and 200") }
            query.limit = value
        }
        let records = try await services.database.withConnection { connection in
            try await services.audit.list(orgID: access.orgID, query, on: connection)
        }
        let next = records.count == query.limit ? records.last.map { String($0.id) } : nil
        return OK(Page(entries: records.map(EntryBody.init), nextCursor: next))
    }
}
