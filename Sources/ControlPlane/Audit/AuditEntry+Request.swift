import Foundation
import HTTPTypes
import Hummingbird
import Storage

extension AuditEntry {
    /// An entry for `action` by the request's caller, with its IP, user agent and request id.
    init(
        _ action: String, orgID: UUID?, target: AuditTarget? = nil, details: [String: String] = [:],
        request: Request, context: APIRequestContext
    ) {
        let actor = context.principal?.auditActor
        self.init(
            orgID: orgID, actorType: actor?.type ?? .anonymous, actorID: actor?.id, actorLabel: actor?.label, action: action,
            targetType: target?.type, targetID: target?.id, ip: context.remoteAddress,
            userAgent: request.headers[.userAgent].map { String($0.prefix(300)) }, requestID: context.requestID,
            details: details)
    }

    /// The same with an explicit actor (logins, where there is no principal yet).
    init(
        _ action: String, orgID: UUID?, actorType: AuditActorType, actorID: UUID?, actorLabel: String?,
        target: AuditTarget? = nil, details: [String: String] = [:], request: Request, context: APIRequestContext
    ) {
        self.init(
            orgID: orgID, actorType: actorType, actorID: actorID, actorLabel: actorLabel, action: action,
            targetType: target?.type, targetID: target?.id, ip: context.remoteAddress,
            userAgent: request.headers[.userAgent].map { String($0.prefix(300)) }, requestID: context.requestID,
            details: details)
    }
}

/// What an audit entry is about.
struct AuditTarget {
    let type: String
    let id: String

    static func user(_ id: UUID) -> AuditTarget { AuditTarget(type: "user", id: id.uuidString) }
    static func organization(_ id: UUID) -> AuditTarget { AuditTarget(type: "organization", id: id.uuidString) }
    static func apiKey(_ id: UUID) -> AuditTarget { AuditTarget(type: "api_key", id: id.uuidString) }
    static func invitation(_ id: UUID) -> AuditTarget { AuditTarget(type: "invitation", id: id.uuidString) }
    static func session(_ id: UUID) -> AuditTarget { AuditTarget(type: "session", id: id.uuidString) }
    static func subscription(_ orgID: UUID) -> AuditTarget { AuditTarget(type: "subscription", id: orgID.uuidString) }
    static func stage(_ name: String) -> AuditTarget { AuditTarget(type: "stage", id: name) }
}
