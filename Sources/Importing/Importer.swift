public import Blobs
public import Foundation
import PostgresNIO
public import Logging
public import Pipeline
public import Storage

public enum ImportFormat: String, Sendable, CaseIterable {
    /// Files, folders and `.zip` archives; each file is one document.
    case auto
    /// A BEIR `corpus.jsonl` (or a folder holding one): one document per line, `_id` kept as external id.
    case beir
}

/// Counters an import reports while it runs.
public struct ImportProgress: Sendable, Equatable {
    public var found = 0
    public var stored = 0
    public var duplicates = 0
    public var published = 0
    public var skipped = 0
}

/// What an import registered.
public struct ImportResult: Sendable {
    public let importID: UUID
    /// True when this run continued an interrupted run of the same import.
    public let resumed: Bool
    /// Every document the sources map to (new and duplicate), in source order.
    public let documentIDs: [UUID]
    /// Source path of each registered document (for reports).
    public let sourcePaths: [UUID: String]
    public let progress: ImportProgress
    public let skipped: [SkippedFile]
    /// Set when the organisation's plan stopped the import: the files from there on are in `skipped`
    /// with this reason; the documents registered before it are imported as usual.
    public let quotaRefusal: QuotaError?
}

/// Bulk import: sources → blob store → `documents` rows → first-stage jobs published with confirms.
///
/// Resumable by construction: blobs are content-addressed, rows are deduplicated by SHA-256 within the
/// organisation, and a row is marked published only after the broker confirmed its job. Running an
/// interrupted import again first re-publishes the organisation's unpublished rows, then walks the
/// sources again, finding the files it already stored.
public struct Importer: Sendable {
    let database: Database
    let blobs: any BlobStore
    let publisher: JobPublisher
    let pipeline: PipelineDefinition
    let logger: Logger
    /// Files (and zip members) larger than this are skipped with a reason.
    public var maxFileBytes = 512 << 20
    /// Documents registered per statement.
    public var batchSize = 250
    /// The organisation's plan limits, charged in the transaction that registers documents (as the HTTP
    /// API does); nil imports without quotas (tests of the pipeline alone).
    public var quotas: QuotaService?

    public init(database: Database, blobs: any BlobStore, publisher: JobPublisher, pipeline: PipelineDefinition, logger: Logger) {
        self.database = database
        self.blobs = blobs
        self.publisher = publisher
        self.pipeline = pipeline
        self.logger = logger
    }

    public func run(
        paths: [String], organization: Organization, format: ImportFormat,
        progress report: @Sendable (ImportProgress) -> Void = { _ in }
    ) async throws -> ImportResult {
        let documents = DocumentRepository(database)
        let imports = ImportRepository(database)
        let absolute = paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let key = BlobKey.of(Array("\(format.rawValue)|\(absolute.sorted().joined(separator: "|"))".utf8)).hex
        let (importID, resumed) = try await imports.begin(orgID: organization.id, key: key)
        if resumed { logger.info("resuming an interrupted import", metadata: ["import_id": "\(importID)"]) }

        // A suspended organisation or a canceled subscription refuses the whole import up front; the
        // plan's per-file limit applies to every file.
        var fileLimit = (bytes: maxFileBytes, reason: "the import limit")
        if let quotas {
            let standing = try await database.withConnection { try await quotas.standing(orgID: organization.id, on: $0) }
            try QuotaService.ensureCanAdd(standing)
            if let planLimit = standing.plan.limits.maxFileBytes, planLimit < fileLimit.bytes {
                fileLimit = (planLimit, "plan '\(standing.plan.name)''s max_file_bytes; upgrade the plan to import it")
            }
        }

        var progress = ImportProgress()
        var quotaRefusal: QuotaError?
        // 1. Jobs an interrupted run stored but never got confirmed.
        try await publishUnpublished(orgID: organization.id, documents: documents) { progress.published += $0; report(progress) }

        // 2. Walk the sources.
        var walker = SourceWalker()
        var pendingItems: [(NewDocument, String)] = []
        var skipped: [SkippedFile] = []
        var documentIDs: [UUID] = []
        var sourcePaths: [UUID: String] = [:]

        func flush() async throws {
            if pendingItems.isEmpty { return }
            var registered = pendingItems
            var registrations: [Registration]
            do {
                registrations = try await register(registered.map(\.0), orgID: organization.id, importID: importID, documents: documents)
            } catch let refusal as QuotaError {
                // The batch crosses a limit: register one file at a time up to it, then stop.
                registrations = []
                registered = []
                for item in pendingItems where quotaRefusal == nil {
                    do {
                        registrations += try await register([item.0], orgID: organization.id, importID: importID, documents: documents)
                        registered.append(item)
                    } catch let refusal as QuotaError {
                        quotaRefusal = refusal
                    }
                }
                quotaRefusal = quotaRefusal ?? refusal
                for item in pendingItems.dropFirst(registered.count) {
                    skipped.append(SkippedFile(path: item.1, reason: "\(quotaRefusal!)"))
                    progress.skipped += 1
                }
            }
            var toPublish: [UUID] = []
            for (registration, item) in zip(registrations, registered) {
                documentIDs.append(registration.documentID)
                sourcePaths[registration.documentID] = item.1
                if registration.duplicate {
                    progress.duplicates += 1
                } else {
                    progress.stored += 1
                    toPublish.append(registration.documentID)
                }
            }
            pendingItems.removeAll(keepingCapacity: true)
            try await publish(toPublish, orgID: organization.id, documents: documents)
            progress.published += toPublish.count
            report(progress)
        }

        switch format {
        case .auto:
            let items = walker.items(for: paths)
            progress.found = items.count
            skipped.append(contentsOf: walker.skipped)
            progress.skipped = skipped.count
            report(progress)
            for item in items {
                if let quotaRefusal {
                    skipped.append(SkippedFile(path: item.displayPath, reason: "\(quotaRefusal)"))
                    progress.skipped += 1
                    continue
                }
                do {
                    pendingItems.append(try await store(item, fileLimit: fileLimit))
                } catch {
                    skipped.append(SkippedFile(path: item.displayPath, reason: "\(error)"))
                    progress.skipped += 1
                }
                if pendingItems.count >= batchSize { try await flush() }
            }
        case .beir:
            for path in paths {
                let corpus = try BEIRCorpus(path: path)
                try await corpus.forEachLine { number, line in
                    progress.found += 1
                    if let quotaRefusal {
                        skipped.append(SkippedFile(path: "\(corpus.file):\(number)", reason: "\(quotaRefusal)"))
                        progress.skipped += 1
                        return
                    }
                    do {
                        let record = try BEIRCorpus.parse(line, number: number)
                        let key = try await blobs.put(line)
                        pendingItems.append((
                            NewDocument(
                                externalID: record.id, title: record.title.isEmpty ? record.id : record.title,
                                sourcePath: "\(corpus.file):\(number)", mimeType: "application/x-beir+json",
                                sizeBytes: line.count, sha256: key.hex),
                            "\(corpus.file):\(number)"))
                    } catch {
                        skipped.append(SkippedFile(path: "\(corpus.file):\(number)", reason: "\(error)"))
                        progress.skipped += 1
                    }
                    if pendingItems.count >= batchSize { try await flush() }
                }
            }
        }
        try await flush()
        try await imports.complete(
            importID, orgID: organization.id, filesFound: progress.found, stored: progress.stored, duplicates: progress.duplicates,
            skipped: progress.skipped)
        report(progress)
        return ImportResult(
            importID: importID, resumed: resumed, documentIDs: documentIDs, sourcePaths: sourcePaths, progress: progress,
            skipped: skipped, quotaRefusal: quotaRefusal)
    }

    /// Registers documents and charges the new ones to the organisation's plan in one transaction: if
    /// the plan refuses (a thrown `QuotaError`), nothing of the batch is registered.
    private func register(_ batch: [NewDocument], orgID: UUID, importID: UUID, documents: DocumentRepository) async throws -> [Registration] {
        try await retryingConflicts {
            try await database.inTransaction { connection in
                let registrations = try await documents.register(batch, orgID: orgID, importID: importID, on: connection)
                if let quotas {
                    let added = zip(registrations, batch).filter { $0.0.inserted }.map(\.1)
                    if !added.isEmpty {
                        let delta = UsageDelta(documents: added.count, storageBytes: added.reduce(0) { $0 + $1.sizeBytes })
                        try await quotas.consume(delta, orgID: orgID, on: connection)
                    }
                }
                return registrations
            }
        }
    }

    /// Stores one source's bytes and describes it; throws a readable reason for a file to skip.
    private func store(_ item: SourceItem, fileLimit: (bytes: Int, reason: String)) async throws -> (NewDocument, String) {
        switch item {
        case .file(let path, let relative):
            let attributes: [FileAttributeKey: Any]
            do {
                attributes = try FileManager.default.attributesOfItem(atPath: path)
            } catch {
                throw ImportError(message: "cannot read the file's attributes; check that it exists and is readable")
            }
            let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
            if size > fileLimit.bytes {
                throw ImportError(message: "the file is \(size) bytes, over the \(fileLimit.bytes)-byte limit of \(fileLimit.reason)")
            }
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ImportError(message: "the file is not readable; check its permissions")
            }
            let key = try await blobs.put(fileAt: path)
            return (describe(relative: relative, path: path, size: size, key: key), path)
        case .zipEntry(let archive, let entry, let relative):
            let bytes = try ZipReader.read(archive: archive, entry: entry, maxBytes: fileLimit.bytes)
            let key = try await blobs.put(bytes)
            return (describe(relative: relative, path: "\(archive)!\(entry)", size: bytes.count, key: key), "\(archive)!\(entry)")
        }
    }

    private func describe(relative: String, path: String, size: Int, key: BlobKey) -> NewDocument {
        NewDocument(
            externalID: relative, title: (relative as NSString).lastPathComponent, sourcePath: path,
            mimeType: NewDocument.guessMimeType(relative), sizeBytes: size, sha256: key.hex)
    }

    private func publish(_ ids: [UUID], orgID: UUID, documents: DocumentRepository) async throws {
        if ids.isEmpty { return }
        let first = pipeline.firstStage
        let jobs = ids.map { Job(orgID: orgID, documentID: $0, stage: first.name) }
        let failures = await publisher.publish(jobs, to: first.queue)
        let confirmed = ids.enumerated().filter { failures[$0.offset] == nil }.map(\.element)
        try await retryingConflicts { try await documents.markPublished(confirmed, orgID: orgID) }
        if let failure = failures.values.first {
            throw ImportError(
                message: "the broker did not confirm \(failures.count) job(s) (\(failure)); run the same import again to resume")
        }
    }

    private func publishUnpublished(orgID: UUID, documents: DocumentRepository, counted: (Int) -> Void) async throws {
        while true {
            let ids = try await documents.unpublished(orgID: orgID, limit: 500)
            if ids.isEmpty { return }
            try await publish(ids, orgID: orgID, documents: documents)
            counted(ids.count)
        }
    }
}

/// Runs `body` again when PostgreSQL aborted it as a deadlock or serialization conflict with the workers
/// (both statements are idempotent), a few times with a short pause.
func retryingConflicts<T>(_ body: () async throws -> T) async throws -> T {
    var attempt = 0
    while true {
        do {
            return try await body()
        } catch let error as PSQLError {
            let state = error.serverInfo?[.sqlState]
            attempt += 1
            guard state == "40P01" || state == "40001", attempt < 6 else { throw error }
            try await Task.sleep(for: .milliseconds(20 * attempt))
        }
    }
}

extension SourceItem {
    var displayPath: String {
        switch self {
        case .file(let path, _): path
        case .zipEntry(let archive, let entry, _): "\(archive)!\(entry)"
        }
    }
}
