public import Foundation
public import Logging
public import PostgresNIO

/// Who did something: a user, an API key, nobody known (a failed login), the billing provider, or the
/// platform itself (the CLI).
public enum AuditActorType: String, Sendable, Codable {
    case user
    case apiKey = "api_key"
    case anonymous, billing, system
}

/// One audit entry to append. `details` holds extra facts (old and new role, plan, …), never secrets.
public struct AuditEntry: Sendable, Equatable {
    public var orgID: UUID?
    public var actorType: AuditActorType
    public var actorID: UUID?
    /// E-mail of a user or prefix of a key, so the log reads without joins and outlives the actor.
    public var actorLabel: String?
    public var action: String
    public var targetType: String?
    public var targetID: String?
    public var ip: String?
    public var userAgent: String?
    public var requestID: String?
    public var details: [String: String]

    public init(
        orgID: UUID?, actorType: AuditActorType, actorID: UUID?, actorLabel: String?, action: String,
        targetType: String? = nil, targetID: String? = nil, ip: String? = nil, userAgent: String? = nil,
        requestID: String? = nil, details: [String: String] = [:]
    ) {
        self.orgID = orgID
        self.actorType = actorType
        self.actorID = actorID
        self.actorLabel = actorLabel
        self.action = action
        self.targetType = targetType
        self.targetID = targetID
        self.ip = ip
        self.userAgent = userAgent
        self.requestID = requestID
        self.details = details
    }
}

/// A stored audit entry.
public struct AuditRecord: Sendable, Equatable {
    public let id: Int64
    public let createdAt: Date
    public let entry: AuditEntry
}

/// Filters of an audit-log listing; nil means "any".
public struct AuditQuery: Sendable {
    public var action: String?
    /// A user or key id, or a label (e-mail, key prefix).
    public var actor: String?
    public var since: Date?
    public var until: Date?
    /// Entries older than this id (the previous page's cursor).
    public var beforeID: Int64?
    public var limit: Int

    public init(action: String? = nil, actor: String? = nil, since: Date? = nil, until: Date? = nil, beforeID: Int64? = nil, limit: Int = 50) {
        self.action = action
        self.actor = actor
        self.since = since
        self.until = until
        self.beforeID = beforeID
        self.limit = limit
    }
}

/// The append-only audit log. Entries are appended on the caller's connection, inside the transaction
/// of the change they record; the table refuses updates and deletes (a trigger).
public struct AuditLogRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    public func append(_ entry: AuditEntry, on connection: PostgresConnection) async throws {
        let details = String(decoding: try JSONEncoder().encode(entry.details), as: UTF8.self)
        try await connection.query(
            """
            INSERT INTO audit_log (org_id, actor_type, actor_id, actor_label, action, target_type, target_id, ip, user_agent, request_id, details)
            VALUES (\(entry.orgID), \(entry.actorType.rawValue), \(entry.actorID), \(entry.actorLabel), \(entry.action),
                    \(entry.targetType), \(entry.targetID), \(entry.ip), \(entry.userAgent), \(entry.requestID), \(details)::jsonb)
            """, logger: logger)
    }

    /// The organisation's entries, newest first.
    public func list(orgID: UUID, _ query: AuditQuery, on connection: PostgresConnection) async throws -> [AuditRecord] {
        let actorID = query.actor.flatMap(UUID.init(uuidString:))
        let actorLabel = actorID == nil ? query.actor?.lowercased() : nil
        let rows = try await connection.query(
            """
            SELECT id, created_at, org_id, actor_type, actor_id, actor_label, action, target_type, target_id, ip, user_agent,
                   request_id, details::text
            FROM audit_log
            WHERE org_id = \(orgID)
              AND (\(query.action)::text IS NULL OR action = \(query.action))
              AND (\(actorID)::uuid IS NULL OR actor_id = \(actorID))
              AND (\(actorLabel)::text IS NULL OR actor_label = \(actorLabel))
              AND (\(query.since)::timestamptz IS NULL OR created_at >= \(query.since))
              AND (\(query.until)::timestamptz IS NULL OR created_at < \(query.until))
              AND (\(query.beforeID)::int8 IS NULL OR id < \(query.beforeID))
            ORDER BY id DESC
            LIMIT \(query.limit)
            """, logger: logger)
        var records: [AuditRecord] = []
        for try await row in rows {
            let (id, created, org, actorType, actorID, label, action, targetType, targetID, ip, agent, requestID, details) =
                try row.decode((Int64, Date, UUID?, String, UUID?, String?, String, String?, String?, String?, String?, String?, String).self)
            let decoded = (try? JSONDecoder().decode([String: String].self, from: Data(details.utf8))) ?? [:]
            records.append(AuditRecord(
                id: id, createdAt: created,
                entry: AuditEntry(
                    orgID: org, actorType: AuditActorType(rawValue: actorType) ?? .system, actorID: actorID, actorLabel: label,
                    action: action, targetType: targetType, targetID: targetID, ip: ip, userAgent: agent, requestID: requestID,
                    details: decoded)))
        }
        return records
    }
}
