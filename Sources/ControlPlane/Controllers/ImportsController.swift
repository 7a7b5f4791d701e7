import Foundation
import Hummingbird
import Importing
import Storage

/// `POST /v1/orgs/{org}/imports` (one multipart part `file`: a `.zip` of documents, or a BEIR
/// `corpus.jsonl`) runs the same importer as `intellidocs import`, with the same quotas, and answers
/// once every document is registered and queued; `GET /v1/orgs/{org}/imports/{id}` follows it.
struct ImportsController {
    let services: APIServices
    /// The largest archive one request may carry; each member is still held to the plan's file size.
    static let maxArchiveBytes = 4 << 30

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.post("imports", use: create)
        router.get("imports/{id}", use: show)
    }

    struct SummaryBody: Encodable, Sendable {
        let summary: ImportSummary
        /// `{"file", "reason"}` per file the import left out (creation only).
        let skippedFiles: [[String: String]]?

        enum CodingKeys: String, CodingKey {
            case id, status, found, stored, duplicates, skipped, succeeded, failed, inProgress = "in_progress", createdAt = "created_at"
            case finishedAt = "finished_at", skippedFiles = "skipped_files"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(summary.id, forKey: .id)
            try container.encode(summary.status, forKey: .status)
            try container.encode(summary.found, forKey: .found)
            try container.encode(summary.stored, forKey: .stored)
            try container.encode(summary.duplicates, forKey: .duplicates)
            try container.encode(summary.skipped, forKey: .skipped)
            try container.encode(summary.succeeded, forKey: .succeeded)
            try container.encode(summary.failed, forKey: .failed)
            try container.encode(summary.inProgress, forKey: .inProgress)
            try container.encode(summary.createdAt, forKey: .createdAt)
            try container.encode(summary.finishedAt, forKey: .finishedAt)
            if let skippedFiles {
                try container.encode(Array(skippedFiles.prefix(1000)), forKey: .skippedFiles)
            }
        }
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Reply<SummaryBody> {
        let access = try context.require(.documentsWrite)
        try access.requireCanAdd()
        let blobs = try services.requireBlobs()
        let publisher = try services.requirePublisher()
        let upload = try await MultipartUpload.read(
            request, into: blobs.incomingFolder(), maxFileBytes: Self.maxArchiveBytes, limitName: "import limit of this server", maxFiles: 1)
        defer { upload.discard() }
        let file = upload.files[0]
        let name = file.filename.lowercased()
        let format: ImportFormat
        if name.hasSuffix(".zip") {
            format = .auto
        } else if name.hasSuffix(".jsonl") {
            format = .beir
        } else {
            throw APIError.validation("file", "an import is a .zip of documents or a BEIR corpus.jsonl; upload single documents to /documents")
        }
        // The importer tells archives from corpora by the name, and names documents after the archive's members.
        let source = upload.folder + "/" + file.filename
        do {
            try FileManager.default.moveItem(atPath: file.path, toPath: source)
        } catch {
            throw APIError.unavailable("cannot stage the import on the server's storage; try again")
        }
        guard let organization = try await OrganizationRepository(services.database).find(id: access.orgID) else {
            throw APIError.notFound("organisation")
        }
        var importer = Importer(
            database: services.database, blobs: blobs, publisher: publisher, pipeline: services.pipeline, logger: context.logger)
        importer.quotas = services.quotas
        let result: ImportResult
        do {
            result = try await importer.run(paths: [source], organization: organization, format: format)
        } catch let error as ImportError {
            throw APIError.validation("file", error.description)
        }
        if result.progress.found == 0, let unreadable = result.skipped.first {
            throw APIError.validation("file", unreadable.reason.replacingOccurrences(of: upload.folder + "/", with: ""))
        }
        try await services.database.inTransaction { connection in
            try await services.audit.append(
                AuditEntry(
                    "import.created", orgID: access.orgID, target: AuditTarget(type: "import", id: result.importID.uuidString),
                    details: ["file": file.filename, "stored": "\(result.progress.stored)", "duplicates": "\(result.progress.duplicates)",
                              "skipped": "\(result.progress.skipped)"],
                    request: request, context: context),
                on: connection)
        }
        if let refusal = result.quotaRefusal, result.progress.stored == 0 { throw refusal }
        guard let summary = try await ImportRepository(services.database).summary(result.importID, orgID: access.orgID) else {
            throw APIError.notFound("import")
        }
        // Reasons name the member, never the server's staging path.
        let skipped = result.skipped.map { skip in
            [
                "file": skip.path.replacingOccurrences(of: source + "!", with: "").replacingOccurrences(of: upload.folder + "/", with: ""),
                "reason": skip.reason.replacingOccurrences(of: upload.folder + "/", with: ""),
            ]
        }
        return Reply(.accepted, SummaryBody(summary: summary, skippedFiles: skipped))
    }

    @Sendable func show(_ request: Request, context: APIRequestContext) async throws -> OK<SummaryBody> {
        let access = try context.require(.documentsRead)
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)),
              let summary = try await ImportRepository(services.database).summary(id, orgID: access.orgID)
        else { throw APIError.notFound("import") }
        return OK(SummaryBody(summary: summary, skippedFiles: nil))
    }
}
