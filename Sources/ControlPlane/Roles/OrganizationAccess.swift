public import Foundation
public import Storage

/// The organisation of an `/v1/orgs/{org}/…` request and what the caller is in it.
public struct OrganizationAccess: Sendable {
    public let account: OrganizationAccount
    /// The member's role, or for an API key the role its scopes stand for.
    public let role: MemberRole
    public let standing: OrganizationStanding

    public var orgID: UUID { account.id }

    /// Throws `403 organization_read_only` when the organisation is suspended or its subscription
    /// canceled: it can read but not add.
    public func requireCanAdd() throws(APIError) {
        do {
            try QuotaService.ensureCanAdd(standing)
        } catch {
            throw APIError(quota: error)
        }
    }
}
