public import Storage

/// What a caller may do inside an organisation. The roles are cumulative — each one may do everything
/// the one before it may — so every permission names the least role that holds it. The table, with the
/// routes, is Permissions.md beside this folder; keep the two in step.
public enum Permission: String, Sendable, CaseIterable {
    // viewer: read and search
    case organizationRead = "organization.read"
    case membersRead = "members.read"
    case subscriptionRead = "subscription.read"
    case documentsRead = "documents.read"
    case search = "search"
    case analyticsRead = "analytics.read"
    // member: also upload
    case documentsWrite = "documents.write"
    case shareLinksManage = "share_links.manage"
    // admin: also members, keys, workflows
    case organizationUpdate = "organization.update"
    case membersManage = "members.manage"
    case apiKeysManage = "api_keys.manage"
    case workflowsManage = "workflows.manage"
    case auditRead = "audit.read"
    // owner: also subscription and deleting the organisation
    case subscriptionManage = "subscription.manage"
    case organizationDelete = "organization.delete"
    /// Granting or taking away the owner role, removing an owner.
    case ownersManage = "owners.manage"

    public var minimumRole: MemberRole {
        switch self {
        case .organizationRead, .membersRead, .subscriptionRead, .documentsRead, .search, .analyticsRead: .viewer
        case .documentsWrite, .shareLinksManage: .member
        case .organizationUpdate, .membersManage, .apiKeysManage, .workflowsManage, .auditRead: .admin
        case .subscriptionManage, .organizationDelete, .ownersManage: .owner
        }
    }
}

extension MemberRole {
    public func permits(_ permission: Permission) -> Bool { self >= permission.minimumRole }
}
