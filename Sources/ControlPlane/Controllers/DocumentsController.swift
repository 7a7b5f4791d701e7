import Blobs
import Foundation
import Hummingbird
import NIOCore
import Pipeline
import Storage

/// `/v1/orgs/{org}/documents`: upload (multipart, streamed), list, read, content, text, tags, reprocess,
/// delete. Uploads are charged to the plan in the transaction that registers them, exactly like
/// `intellidocs import`, and their first jobs are published after the commit.
struct DocumentsController {
    let services: APIServices

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.post("documents", use: upload)
        router.get("documents", use: list)
        router.get("documents/{id}", use: show)
        router.get("documents/{id}/content", use: content)
        router.get("documents/{id}/text", use: text)
        router.put("documents/{id}/tags", use: setTags)
        router.post("documents/{id}/reprocess", use: reprocess)
        router.delete("documents/{id}", use: delete)
    }

    // MARK: Bodies

    struct UploadedBody: Encodable, Sendable {
        let id: UUID
        let status: String
        let duplicate: Bool
        let filename: String
    }

    struct UploadBody: Encodable, Sendable {
        let documents: [UploadedBody]
    }

    struct DocumentBody: Encodable, Sendable {
        let id: UUID
        let externalID: String?
        let title: String
        let mimeType: String?
        let sizeBytes: Int
        let sha256: String
        let status: String
        let error: String?
        let failedStage: String?
        let pageCount: Int?
        let tags: [String]
        let nearDuplicateOf: UUID?
        let reviewState: String?
        let assigneeID: UUID?
        let createdAt: Date
        let updatedAt: Date

        init(_ document: DocumentSummary) {
            id = document.id
            externalID = document.externalID
            title = document.title
            mimeType = document.mimeType
            sizeBytes = document.sizeBytes
            sha256 = document.sha256
            status = document.status.rawValue
            error = document.error
            failedStage = document.failedStage
            pageCount = document.pageCount
            tags = document.tags
            nearDuplicateOf = document.nearDuplicateOf
            reviewState = document.reviewState
            assigneeID = document.assigneeID
            createdAt = document.createdAt
            updatedAt = document.updatedAt
        }

        enum CodingKeys: String, CodingKey {
            case id, externalID = "external_id", title, mimeType = "mime_type", sizeBytes = "size_bytes", sha256, status, error
            case failedStage = "failed_stage", pageCount = "page_count", tags, nearDuplicateOf = "near_duplicate_of"
            case reviewState = "review_state", assigneeID = "assignee_id"
            case createdAt = "created_at", updatedAt = "updated_at"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(externalID, forKey: .externalID)
            try container.encode(title, forKey: .title)
            try container.encode(mimeType, forKey: .mimeType)
            try container.encode(sizeBytes, forKey: .sizeBytes)
            try container.encode(sha256, forKey: .sha256)
            try container.encode(status, forKey: .status)
            try container.encode(error, forKey: .error)
            try container.encode(failedStage, forKey: .failedStage)
            try container.encode(pageCount, forKey: .pageCount)
            try container.encode(tags, forKey: .tags)
            try container.encode(nearDuplicateOf, forKey: .nearDuplicateOf)
            try container.encode(reviewState, forKey: .reviewState)
            try container.encode(assigneeID, forKey: .assigneeID)
            try container.encode(createdAt, forKey: .createdAt)
            try container.encode(updatedAt, forKey: .updatedAt)
        }
    }

    struct TimelineEntry: Encodable, Sendable {
        let stage: String
        let status: String
        let attempts: Int
        let started: Date?
        let finished: Date?
        let durationMs: Int?
        let error: String?

        enum CodingKeys: String, CodingKey { case stage, status, attempts, started, finished, durationMs = "duration_ms", error }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(stage, forKey: .stage)
            try container.encode(status, forKey: .status)
            try container.encode(attempts, forKey: .attempts)
            try container.encode(started, forKey: .started)
            try container.encode(finished, forKey: .finished)
            try container.encode(durationMs, forKey: .durationMs)
            try container.encode(error, forKey: .error)
        }
    }

    struct DetailBody: Encodable, Sendable {
        let document: DocumentBody
        let timeline: [TimelineEntry]

        func encode(to encoder: any Encoder) throws {
            try document.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(timeline, forKey: .timeline)
        }
        enum CodingKeys: String, CodingKey { case timeline }
    }

    struct ListBody: Encodable, Sendable {
        let documents: [DocumentBody]
        let nextCursor: String?
        enum CodingKeys: String, CodingKey { case documents, nextCursor = "next_cursor" }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(documents, forKey: .documents)
            try container.encode(nextCursor, forKey: .nextCursor)
        }
    }

    struct PageBody: Encodable, Sendable {
        let page: Int
        let text: String
        let source: String
        let confidence: Float?
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(page, forKey: .page)
            try container.encode(text, forKey: .text)
            try container.encode(source, forKey: .source)
            try container.encode(confidence, forKey: .confidence)
        }
        enum CodingKeys: String, CodingKey { case page, text, source, confidence }
    }

    struct TextBody: Encodable, Sendable {
        let documentID: UUID
        let pages: [PageBody]
        enum CodingKeys: String, CodingKey { case documentID = "document_id", pages }
    }

    struct TagsInput: JSONInput {
        static let fields: Set<String> = ["tags"]
        let tags: [String]
        func validate() throws(APIError) { _ = try DocumentsController.validTags(tags, field: "tags") }
    }

    // MARK: Routes

    @Sendable func upload(_ request: Request, context: APIRequestContext) async throws -> Reply<UploadBody> {
        let access = try context.require(.documentsWrite)
        try access.requireCanAdd()
        let blobs = try services.requireBlobs()
        let publisher = try services.requirePublisher()
        let planLimit = access.standing.plan.limits.maxFileBytes
        let upload = try await MultipartUpload.read(
            request, into: blobs.incomingFolder(), maxFileBytes: planLimit ?? Int.max,
            limitName: planLimit == nil ? "server's limit" : "max_file_bytes of plan '\(access.standing.plan.name)'")
        defer { upload.discard() }

        let title = try Self.singleField("title", in: upload, files: upload.files.count)
        let externalID = try Self.singleField("external_id", in: upload, files: upload.files.count)
        if let title { _ = try Validate.text(title, field: "title") }
        if let externalID, externalID.isEmpty || externalID.count > 500 { throw APIError.validation("external_id", "must be 1 to 500 characters") }
        let tags = try Self.validTags(
            (upload.fields["tags"] ?? []).flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty },
            field: "tags")

        for file in upload.files {
            guard let key = BlobKey(hex: file.sha256) else { throw APIError.internalError }
            do {
                try blobs.adopt(file.path, key: key)
            } catch {
                throw APIError.unavailable("cannot store the upload: \(error.description)")
            }
        }
        let batch = upload.files.map { file in
            NewDocument(
                externalID: externalID ?? file.filename, title: title ?? file.filename, sourcePath: nil,
                mimeType: NewDocument.guessMimeType(file.filename), sizeBytes: file.size, sha256: file.sha256)
        }
        let documents = DocumentRepository(services.database)
        let (registrations, toPublish) = try await services.database.inTransaction { connection in
            let registrations = try await documents.register(batch, orgID: access.orgID, on: connection)
            let added = zip(registrations, batch).filter { $0.0.inserted }.map(\.1)
            if !added.isEmpty {
                try await services.quotas.consume(
                    UsageDelta(documents: added.count, storageBytes: added.reduce(0) { $0 + $1.sizeBytes }), orgID: access.orgID, on: connection)
            }
            let newIDs = zip(registrations, batch).filter { $0.0.inserted }.map(\.0.documentID)
            try await services.documents.addTags(tags, to: newIDs, orgID: access.orgID, on: connection)
            for (registration, file) in zip(registrations, upload.files) {
                try await services.audit.append(
                    AuditEntry(
                        registration.inserted ? "document.uploaded" : "document.upload_duplicate", orgID: access.orgID,
                        target: .document(registration.documentID), details: ["filename": file.filename, "bytes": "\(file.size)"],
                        request: request, context: context),
                    on: connection)
            }
            // New rows, and rows an earlier upload registered but could not queue (broker down then).
            let unpublished = try await documents.unpublished(registrations.map(\.documentID), orgID: access.orgID, on: connection)
            return (registrations, unpublished)
        }
        try await Self.publish(toPublish, orgID: access.orgID, publisher: publisher, pipeline: services.pipeline, documents: documents)

        let statuses = try await services.database.withConnection { connection in
            try await documents.get(registrations.map(\.documentID), orgID: access.orgID, on: connection)
        }
        let statusByID = Dictionary(statuses.map { ($0.id, $0.status) }, uniquingKeysWith: { first, _ in first })
        return Reply(.accepted, UploadBody(documents: zip(registrations, upload.files).map { registration, file in
            UploadedBody(
                id: registration.documentID, status: (statusByID[registration.documentID] ?? .queued).apiStatus,
                duplicate: registration.duplicate, filename: file.filename)
        }))
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> OK<ListBody> {
        let access = try context.require(.documentsRead)
        let query = request.uri.queryParameters
        var filter = DocumentListFilter()
        if let status = query["status"].map(String.init) {
            switch status {
            case "queued": filter.status = .queued
            case "processing": filter.status = .processing
            case "succeeded": filter.status = .succeeded
            case "failed": filter.status = .failed
            default: throw APIError.validation("status", "must be one of queued, processing, succeeded, failed")
            }
        }
        filter.tag = query["tag"].map(String.init)
        filter.mimeType = query["mime_type"].map(String.init)
        filter.text = query["q"].map(String.init).flatMap { $0.isEmpty ? nil : String($0.prefix(200)) }
        filter.reviewState = query["review_state"].map(String.init)
        if let assignee = query["assignee"].map(String.init) {
            guard let id = UUID(uuidString: assignee) else { throw APIError.validation("assignee", "must be a user id") }
            filter.assigneeID = id
        }
        let limit = try Self.limit(query["limit"].map(String.init))
        let position = try query["cursor"].map { try Self.decodeCursor(String($0)) }
        let page = try await services.database.withConnection { connection in
            try await services.documents.list(orgID: access.orgID, filter: filter, after: position, limit: limit + 1, on: connection)
        }
        let shown = Array(page.prefix(limit))
        let next = page.count > limit ? shown.last.map { Self.encodeCursor(DocumentListPosition(createdAt: $0.createdAt, id: $0.id)) } : nil
        return OK(ListBody(documents: shown.map(DocumentBody.init), nextCursor: next))
    }

    @Sendable func show(_ request: Request, context: APIRequestContext) async throws -> OK<DetailBody> {
        let access = try context.require(.documentsRead)
        let id = try Self.documentID(context)
        let (document, timeline) = try await services.database.withConnection { connection in
            guard let document = try await services.documents.get(id, orgID: access.orgID, on: connection) else {
                throw APIError.notFound("document")
            }
            return (document, try await services.documents.timeline(id, orgID: access.orgID, on: connection))
        }
        return OK(DetailBody(
            document: DocumentBody(document),
            timeline: timeline.map { run in
                TimelineEntry(
                    stage: run.stage, status: run.status.rawValue, attempts: run.attempts, started: run.startedAt, finished: run.finishedAt,
                    durationMs: run.startedAt.flatMap { started in run.finishedAt.map { Int(($0.timeIntervalSince(started) * 1000).rounded()) } },
                    error: run.error)
            }))
    }

    @Sendable func content(_ request: Request, context: APIRequestContext) async throws -> Response {
        let access = try context.require(.documentsRead)
        let blobs = try services.requireBlobs()
        let id = try Self.documentID(context)
        guard let document = try await services.database.withConnection({ try await services.documents.get(id, orgID: access.orgID, on: $0) }) else {
            throw APIError.notFound("document")
        }
        return try Self.streamBlob(document, blobs: blobs)
    }

    @Sendable func text(_ request: Request, context: APIRequestContext) async throws -> OK<TextBody> {
        let access = try context.require(.documentsRead)
        let id = try Self.documentID(context)
        let pages = try await services.database.withConnection { connection in
            guard try await services.documents.get(id, orgID: access.orgID, on: connection) != nil else { throw APIError.notFound("document") }
            return try await services.documents.pages(id, orgID: access.orgID, on: connection)
        }
        return OK(TextBody(documentID: id, pages: pages.map {
            PageBody(page: $0.number, text: $0.text, source: $0.source.rawValue, confidence: $0.confidence)
        }))
    }

    @Sendable func setTags(_ request: Request, context: APIRequestContext) async throws -> OK<DocumentBody> {
        let access = try context.require(.documentsWrite)
        let id = try Self.documentID(context)
        let input = try await request.decodeInput(TagsInput.self, context: context)
        let tags = try Self.validTags(input.tags, field: "tags")
        let document = try await services.database.inTransaction { connection in
            guard try await services.documents.setTags(tags, of: id, orgID: access.orgID, on: connection) else {
                throw APIError.notFound("document")
            }
            try await services.audit.append(
                AuditEntry("document.tags_set", orgID: access.orgID, target: .document(id), details: ["tags": tags.joined(separator: ",")],
                           request: request, context: context),
                on: connection)
            return try await services.documents.get(id, orgID: access.orgID, on: connection)
        }
        guard let document else { throw APIError.notFound("document") }
        return OK(DocumentBody(document))
    }

    @Sendable func reprocess(_ request: Request, context: APIRequestContext) async throws -> Reply<UploadedBody> {
        let access = try context.require(.documentsWrite)
        try access.requireCanAdd()
        let publisher = try services.requirePublisher()
        let id = try Self.documentID(context)
        let document = try await services.database.inTransaction { connection in
            guard let document = try await services.documents.get(id, orgID: access.orgID, on: connection) else {
                throw APIError.notFound("document")
            }
            guard document.status.isTerminal else {
                throw APIError.conflict("the document is still \(document.status.apiStatus); reprocess it once it has succeeded or failed", code: "document_busy")
            }
            _ = try await services.documents.resetForReprocessing(id, orgID: access.orgID, on: connection)
            try await services.audit.append(
                AuditEntry("document.reprocessed", orgID: access.orgID, target: .document(id), request: request, context: context),
                on: connection)
            return document
        }
        try await Self.publish([id], orgID: access.orgID, publisher: publisher, pipeline: services.pipeline, documents: DocumentRepository(services.database))
        return Reply(.accepted, UploadedBody(id: id, status: DocumentStatus.queued.apiStatus, duplicate: false, filename: document.title))
    }

    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> HTTPResponse.Status {
        let access = try context.require(.documentsWrite)
        let id = try Self.documentID(context)
        let (document, blobStillUsed) = try await services.database.inTransaction { connection in
            guard let deleted = try await services.documents.delete(id, orgID: access.orgID, on: connection) else {
                throw APIError.notFound("document")
            }
            try await UsageRepository(logger: services.logger).record(UsageDelta(storageBytes: -deleted.document.sizeBytes), orgID: access.orgID, on: connection)
            try await services.audit.append(
                AuditEntry("document.deleted", orgID: access.orgID, target: .document(id),
                           details: ["title": deleted.document.title, "bytes": "\(deleted.document.sizeBytes)"], request: request, context: context),
                on: connection)
            return deleted
        }
        if !blobStillUsed, let blobs = services.blobs, let key = BlobKey(hex: document.sha256) {
            // After the commit: a failed delete leaves an unreferenced blob, never a document without its bytes.
            do {
                try await blobs.delete(key)
            } catch {
                context.logger.warning("the deleted document's blob stays on disk", metadata: ["error": "\(error)"])
            }
        }
        return .noContent
    }

    // MARK: Helpers

    /// Publishes the first stage's jobs with confirms and marks the rows published. A broker that does not
    /// confirm leaves them unpublished: the next upload of the same bytes (or `intellidocs import`) queues them.
    static func publish(_ ids: [UUID], orgID: UUID, publisher: JobPublisher, pipeline: PipelineDefinition, documents: DocumentRepository) async throws {
        if ids.isEmpty { return }
        let first = pipeline.firstStage
        let failures = await publisher.publish(ids.map { Job(orgID: orgID, documentID: $0, stage: first.name) }, to: first.queue)
        let confirmed = ids.enumerated().filter { failures[$0.offset] == nil }.map(\.element)
        try await documents.markPublished(confirmed, orgID: orgID)
        if !failures.isEmpty {
            throw APIError.unavailable("the documents are stored but the queue did not accept them; upload the same files again to queue them")
        }
    }

    static func documentID(_ context: APIRequestContext) throws(APIError) -> UUID {
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else { throw APIError.notFound("document") }
        return id
    }

    static func singleField(_ name: String, in upload: MultipartUpload, files: Int) throws(APIError) -> String? {
        guard let values = upload.fields[name] else { return nil }
        guard values.count == 1 else { throw APIError.validation(name, "give it once") }
        guard files == 1 else { throw APIError.validation(name, "applies to a single file; upload several files without it") }
        return values[0]
    }

    static func validTags(_ tags: [String], field: String) throws(APIError) -> [String] {
        guard tags.count <= 50 else { throw APIError.validation(field, "at most 50 tags") }
        for (index, tag) in tags.enumerated() {
            guard !tag.isEmpty, tag.count <= 64, !tag.contains(","), tag.unicodeScalars.allSatisfy({ !CharacterSet.controlCharacters.contains($0) }) else {
                throw APIError.validation("\(field)[\(index)]", "a tag is 1 to 64 characters without commas or control characters")
            }
        }
        return Array(Set(tags)).sorted()
    }

    static func limit(_ text: String?) throws(APIError) -> Int {
        guard let text else { return 50 }
        guard let value = Int(text), (1...200).contains(value) else { throw APIError.validation("limit", "must be a whole number from 1 to 200") }
        return value
    }

    static func encodeCursor(_ position: DocumentListPosition) -> String {
        let text = "\(position.createdAt.timeIntervalSince1970)|\(position.id.uuidString.lowercased())"
        return Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeCursor(_ cursor: String) throws(APIError) -> DocumentListPosition {
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8) else {
            throw APIError.validation("cursor", "is not a cursor this API gave out")
        }
        let parts = text.split(separator: "|")
        guard parts.count == 2, let seconds = Double(parts[0]), let id = UUID(uuidString: String(parts[1])) else {
            throw APIError.validation("cursor", "is not a cursor this API gave out")
        }
        return DocumentListPosition(createdAt: Date(timeIntervalSince1970: seconds), id: id)
    }

    /// The original bytes, read from disk in chunks as the client takes them.
    static func streamBlob(_ document: DocumentSummary, blobs: FileBlobStore) throws -> Response {
        guard let key = BlobKey(hex: document.sha256), let handle = FileHandle(forReadingAtPath: blobs.path(for: key)) else {
            throw APIError(.gone, code: "content_missing", message: "the document's original bytes are missing from the blob store; upload it again")
        }
        let body = ResponseBody { writer in
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: 256 * 1024), !chunk.isEmpty {
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        }
        var headers: HTTPFields = [.contentType: document.mimeType ?? "application/octet-stream", .contentLength: "\(document.sizeBytes)"]
        let filename = document.title.replacingOccurrences(of: "\"", with: "'")
        headers[.contentDisposition] = "attachment; filename=\"\(filename.unicodeScalars.filter { $0.isASCII }.map(String.init).joined())\""
        headers[.init("X-Content-Type-Options")!] = "nosniff"
        return Response(status: .ok, headers: headers, body: body)
    }
}

extension DocumentStatus {
    /// The API's four statuses are the stored ones.
    var apiStatus: String { rawValue }
}

extension AuditTarget {
    static func document(_ id: UUID) -> AuditTarget { AuditTarget(type: "document", id: id.uuidString) }
}
