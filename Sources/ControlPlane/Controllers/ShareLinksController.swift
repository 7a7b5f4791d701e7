import Foundation
import HTTPTypes
import Hummingbird
import Storage

/// Share links: members create, list, change and revoke them under `/v1/orgs/{org}`; anyone holding a
/// token reads the document at `GET /v1/shared/{token}` (and its bytes at `…/content` when allowed).
///
/// Tokens carry 256 random bits and are stored as SHA-256; a password travels in the `X-Share-Password`
/// header (never the URL) and is stored as bcrypt. Expired, revoked or used-up links answer `410`. Every
/// view is counted by one conditional update (no more than `max_views`, even when racing) and audited in
/// the same transaction.
struct ShareLinksController {
    let services: APIServices
    static let passwordHeader = HTTPField.Name("X-Share-Password")!
    static let tokenPrefix = "shr_"

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.post("documents/{id}/share-links", use: create)
        router.get("share-links", use: list)
        router.patch("share-links/{id}", use: update)
        router.delete("share-links/{id}", use: revoke)
    }

    func registerPublic(on router: some RouterMethods<APIRequestContext>) {
        router.get("shared/{token}", use: view)
        router.get("shared/{token}/content", use: download)
    }

    // MARK: Bodies

    struct LinkBody: Encodable, Sendable {
        let link: ShareLinkRecord
        /// Only at creation.
        let token: String?

        enum CodingKeys: String, CodingKey {
            case id, documentID = "document_id", token, url, expiresAt = "expires_at", maxViews = "max_views", views
            case allowDownload = "allow_download", hasPassword = "has_password", createdAt = "created_at", revokedAt = "revoked_at", state
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(link.id, forKey: .id)
            try container.encode(link.documentID, forKey: .documentID)
            if let token {
                try container.encode(token, forKey: .token)
                try container.encode("/v1/shared/\(token)", forKey: .url)
            }
            try container.encode(link.expiresAt, forKey: .expiresAt)
            try container.encode(link.maxViews, forKey: .maxViews)
            try container.encode(link.views, forKey: .views)
            try container.encode(link.allowDownload, forKey: .allowDownload)
            try container.encode(link.passwordHash != nil, forKey: .hasPassword)
            try container.encode(link.createdAt, forKey: .createdAt)
            try container.encode(link.revokedAt, forKey: .revokedAt)
            try container.encode(link.closedReason() == nil ? "active" : (link.revokedAt != nil ? "revoked" : "closed"), forKey: .state)
        }
    }

    struct LinkList: Encodable, Sendable {
        let shareLinks: [LinkBody]
        enum CodingKeys: String, CodingKey { case shareLinks = "share_links" }
    }

    struct SharedBody: Encodable, Sendable {
        let title: String
        let mimeType: String?
        let pageCount: Int?
        let sizeBytes: Int
        let allowDownload: Bool
        let expiresAt: Date
        let views: Int
        let maxViews: Int?
        let pages: [DocumentsController.PageBody]

        enum CodingKeys: String, CodingKey {
            case title, mimeType = "mime_type", pageCount = "page_count", sizeBytes = "size_bytes", allowDownload = "allow_download"
            case expiresAt = "expires_at", views, maxViews = "max_views", pages
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(title, forKey: .title)
            try container.encode(mimeType, forKey: .mimeType)
            try container.encode(pageCount, forKey: .pageCount)
            try container.encode(sizeBytes, forKey: .sizeBytes)
            try container.encode(allowDownload, forKey: .allowDownload)
            try container.encode(expiresAt, forKey: .expiresAt)
            try container.encode(views, forKey: .views)
            try container.encode(maxViews, forKey: .maxViews)
            try container.encode(pages, forKey: .pages)
        }
    }

    /// `{expires_at | expires_in, password?, max_views?, allow_download}`; in a PATCH every key is optional
    /// and `password: null` / `max_views: null` remove them.
    struct LinkInput: JSONInput {
        static let fields: Set<String> = ["expires_at", "expires_in", "password", "max_views", "allow_download"]
        var expiresAt: Date?
        var expiresIn: Int?
        var password: String??
        var maxViews: Int??
        var allowDownload: Bool?

        enum CodingKeys: String, CodingKey {
            case expiresAt = "expires_at", expiresIn = "expires_in", password, maxViews = "max_views", allowDownload = "allow_download"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if let text = try container.decodeIfPresent(String.self, forKey: .expiresAt) {
                guard let date = ISO8601DateFormatter().date(from: text) else {
                    throw DecodingError.dataCorruptedError(forKey: .expiresAt, in: container, debugDescription: "an ISO 8601 time such as 2026-12-31T00:00:00Z")
                }
                expiresAt = date
            }
            expiresIn = try container.decodeIfPresent(Int.self, forKey: .expiresIn)
            if container.contains(.password) {
                password = try container.decodeNil(forKey: .password) ? .some(nil) : .some(try container.decode(String.self, forKey: .password))
            }
            if container.contains(.maxViews) {
                maxViews = try container.decodeNil(forKey: .maxViews) ? .some(nil) : .some(try container.decode(Int.self, forKey: .maxViews))
            }
            allowDownload = try container.decodeIfPresent(Bool.self, forKey: .allowDownload)
        }

        func validate() throws(APIError) {
            if expiresAt != nil && expiresIn != nil { throw APIError.validation("expires_in", "give expires_at or expires_in, not both") }
            if let expiresIn, !(60...(366 * 24 * 3600)).contains(expiresIn) {
                throw APIError.validation("expires_in", "must be from 60 seconds to 366 days")
            }
            if let expiresAt {
                guard expiresAt > Date() else { throw APIError.validation("expires_at", "must be in the future") }
                guard expiresAt < Date().addingTimeInterval(366 * 24 * 3600) else { throw APIError.validation("expires_at", "must be within 366 days") }
            }
            if case .some(.some(let password)) = password {
                guard password.count >= 8, password.utf8.count <= PasswordHasher.maximumBytes else {
                    throw APIError.validation("password", "must be 8 characters to 72 bytes")
                }
            }
            if case .some(.some(let maxViews)) = maxViews, !(1...1_000_000).contains(maxViews) {
                throw APIError.validation("max_views", "must be from 1 to 1000000")
            }
        }

        var expiry: Date? { expiresAt ?? expiresIn.map { Date().addingTimeInterval(TimeInterval($0)) } }
    }

    // MARK: Organisation routes

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Reply<LinkBody> {
        let access = try context.require(.shareLinksManage)
        try access.requireCanAdd()
        let documentID = try DocumentsController.documentID(context)
        let input = try await request.decodeInput(LinkInput.self, context: context)
        guard let expiry = input.expiry else { throw APIError.validation("expires_at", "give expires_at or expires_in") }
        let passwordHash: String? = if case .some(.some(let password)) = input.password { try await services.passwords.hash(password) } else { nil }
        let token = SecretToken.generate(prefix: Self.tokenPrefix)
        let link = try await services.database.inTransaction { connection in
            // A document of another organisation is simply not found.
            guard try await services.documents.get(documentID, orgID: access.orgID, on: connection) != nil else {
                throw APIError.notFound("document")
            }
            let link = try await ShareLinkRepository(logger: services.logger).create(
                orgID: access.orgID, documentID: documentID, tokenHash: SecretToken.hash(token), expiresAt: expiry, passwordHash: passwordHash,
                maxViews: input.maxViews.flatMap { $0 }, allowDownload: input.allowDownload ?? false, createdBy: context.principal?.user?.id,
                on: connection)
            try await services.audit.append(
                AuditEntry("share_link.created", orgID: access.orgID, target: .shareLink(link.id),
                           details: ["document_id": documentID.uuidString, "expires_at": ISO8601DateFormatter().string(from: expiry)],
                           request: request, context: context),
                on: connection)
            return link
        }
        return Reply(.created, LinkBody(link: link, token: token))
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> OK<LinkList> {
        let access = try context.require(.shareLinksManage)
        let links = try await services.database.withConnection { try await ShareLinkRepository(logger: services.logger).list(orgID: access.orgID, on: $0) }
        return OK(LinkList(shareLinks: links.map { LinkBody(link: $0, token: nil) }))
    }

    @Sendable func update(_ request: Request, context: APIRequestContext) async throws -> OK<LinkBody> {
        let access = try context.require(.shareLinksManage)
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else { throw APIError.notFound("share link") }
        let input = try await request.decodeInput(LinkInput.self, context: context)
        if input.allowDownload != nil { throw APIError.validation("allow_download", "is fixed at creation; create a new link") }
        let passwordHash: String? = if case .some(.some(let password)) = input.password { try await services.passwords.hash(password) } else { nil }
        let clearPassword = if case .some(.none) = input.password { true } else { false }
        let link = try await services.database.inTransaction { connection in
            guard let link = try await ShareLinkRepository(logger: services.logger).update(
                id, orgID: access.orgID, expiresAt: input.expiry, passwordHash: passwordHash, clearPassword: clearPassword, maxViews: input.maxViews,
                on: connection)
            else { throw APIError.notFound("share link") }
            try await services.audit.append(
                AuditEntry("share_link.updated", orgID: access.orgID, target: .shareLink(id),
                           details: ["fields": LinkInput.fields.filter { Self.given($0, in: input) }.sorted().joined(separator: ",")],
                           request: request, context: context),
                on: connection)
            return link
        }
        return OK(LinkBody(link: link, token: nil))
    }

    @Sendable func revoke(_ request: Request, context: APIRequestContext) async throws -> HTTPResponse.Status {
        let access = try context.require(.shareLinksManage)
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else { throw APIError.notFound("share link") }
        try await services.database.inTransaction { connection in
            guard try await ShareLinkRepository(logger: services.logger).revoke(id, orgID: access.orgID, on: connection) != nil else {
                throw APIError.notFound("share link")
            }
            try await services.audit.append(
                AuditEntry("share_link.revoked", orgID: access.orgID, target: .shareLink(id), request: request, context: context), on: connection)
        }
        return .noContent
    }

    static func given(_ field: String, in input: LinkInput) -> Bool {
        switch field {
        case "expires_at": input.expiresAt != nil
        case "expires_in": input.expiresIn != nil
        case "password": input.password != nil
        case "max_views": input.maxViews != nil
        default: input.allowDownload != nil
        }
    }

    // MARK: Public routes

    @Sendable func view(_ request: Request, context: APIRequestContext) async throws -> OK<SharedBody> {
        let (link, document) = try await open(request, context: context, action: "share_link.viewed")
        let pages = try await services.database.withConnection { try await services.documents.pages(document.id, orgID: link.orgID, on: $0) }
        return OK(SharedBody(
            title: document.title, mimeType: document.mimeType, pageCount: document.pageCount, sizeBytes: document.sizeBytes,
            allowDownload: link.allowDownload, expiresAt: link.expiresAt, views: link.views, maxViews: link.maxViews,
            pages: pages.map { DocumentsController.PageBody(page: $0.number, text: $0.text, source: $0.source.rawValue, confidence: $0.confidence) }))
    }

    @Sendable func download(_ request: Request, context: APIRequestContext) async throws -> Response {
        let blobs = try services.requireBlobs()
        let (_, document) = try await open(request, context: context, action: "share_link.downloaded", needsDownload: true)
        return try DocumentsController.streamBlob(document, blobs: blobs)
    }

    /// Checks the token, state and password, then counts and audits the view in one transaction.
    private func open(
        _ request: Request, context: APIRequestContext, action: String, needsDownload: Bool = false
    ) async throws -> (ShareLinkRecord, DocumentSummary) {
        let token = context.parameters.get("token") ?? ""
        let repository = ShareLinkRepository(logger: services.logger)
        guard token.hasPrefix(Self.tokenPrefix),
              let link = try await services.database.withConnection({ try await repository.find(tokenHash: SecretToken.hash(token), on: $0) })
        else { throw APIError.notFound("share link") }
        if let reason = link.closedReason() { throw APIError(.gone, code: "share_link_gone", message: "\(reason); ask its owner for a new one") }
        if needsDownload && !link.allowDownload {
            throw APIError.forbidden("this link does not allow downloading the original; GET /v1/shared/{token} shows the text", code: "download_not_allowed")
        }
        if let hash = link.passwordHash {
            guard let password = request.headers[Self.passwordHeader] else {
                throw APIError(.unauthorized, code: "share_password_required", message: "this link needs its password in the X-Share-Password header")
            }
            guard try await services.passwords.verify(password, hash: hash) else {
                throw APIError(.unauthorized, code: "invalid_share_password", message: "the password in X-Share-Password is wrong")
            }
        }
        return try await services.database.inTransaction { connection in
            guard let counted = try await repository.countView(link.id, on: connection) else {
                throw APIError(.gone, code: "share_link_gone", message: "the link no longer answers; ask its owner for a new one")
            }
            guard let document = try await services.documents.get(link.documentID, orgID: link.orgID, on: connection) else {
                throw APIError(.gone, code: "share_link_gone", message: "the shared document was deleted")
            }
            try await services.audit.append(
                AuditEntry(action, orgID: link.orgID, target: .shareLink(link.id), details: ["views": "\(counted.views)"],
                           request: request, context: context),
                on: connection)
            return (counted, document)
        }
    }
}

extension AuditTarget {
    static func shareLink(_ id: UUID) -> AuditTarget { AuditTarget(type: "share_link", id: id.uuidString) }
}
