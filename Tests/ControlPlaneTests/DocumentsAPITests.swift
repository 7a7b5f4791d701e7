import Blobs
import ControlPlane
import Foundation
import HTTPTypes
import Pipeline
import Search
import ServiceLifecycle
import Stages
import Storage
import Testing
import TestSupport

/// Documents and search over HTTP against the real server, PostgreSQL, RabbitMQ, Tesseract and stage
/// workers: uploads (a born-digital PDF, a scanned image, a text file) reach `succeeded` and are found;
/// duplicates, tags, text, content, timeline, reprocess, delete; bad uploads; another organisation sees
/// none of it.
@Suite(.serialized)
struct DocumentsAPITests {
    static let pipeline = try! PipelineDefinition.parse(
        """
        version: 1
        name: api-test
        defaults: {max_attempts: 3, retry_delays: [1s, 2s], delivery_limit: 5, prefetch: 20, batch_size: 10, concurrency: 1}
        stages:
          - name: ingest
          - name: ocr
            batch_size: 2
            options: {languages: eng, threads: 2}
          - name: chunk
            options: {max_tokens: 200, overlap: 30}
          - name: index
        """)

    static var sharedData: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/data").path
    }

    static func data(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: "\(sharedData)/\(path)") else { throw TestFailure("test data missing: \(sharedData)/\(path)") }
        return [UInt8](data)
    }

    /// Polls until every document is `succeeded` or `failed`.
    static func waitForTerminal(_ api: APIClient, ids: [String], token: String, seconds: Int = 180) async throws -> [String: String] {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            var statuses: [String: String] = [:]
            for id in ids {
                statuses[id] = try await api.call(.get, "/v1/orgs/acme/documents/\(id)", token: token).string("status")
            }
            if statuses.values.allSatisfy({ $0 == "succeeded" || $0 == "failed" }) { return statuses }
            if ContinuousClock.now > deadline { throw TestFailure("documents not done in \(seconds) s: \(statuses)") }
            try await Task.sleep(for: .milliseconds(300))
        }
    }

    /// The API with a blob store, a publisher and keyword search, and in-process workers for every stage
    /// of `pipeline`, while `body` runs.
    static func withStack(_ env: TestEnvironment, _ body: @Sendable (APIClient, FileBlobStore) async throws -> Void) async throws {
        let blobRoot = FileManager.default.temporaryDirectory.appendingPathComponent("api-blobs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: blobRoot) }
        let blobs = try FileBlobStore(root: blobRoot)
        let publishing = try await env.broker()
        let workerBroker = try await env.broker()
        do {
            try await Topology.apply(Self.pipeline, broker: publishing)
            let catalog = StageCatalog(blobs: blobs)
            let workers = try Self.pipeline.stages.map {
                try catalog.worker(for: $0.name, pipeline: Self.pipeline, broker: workerBroker, database: env.database, logger: env.logger)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in workers { group.addTask { try await worker.run() } }
                try await APIHarness.run(env, dependencies: {
                    $0.pipeline = Self.pipeline
                    $0.blobs = blobs
                    $0.publisher = JobPublisher(broker: publishing)
                    $0.search = SearchService(database: env.database)
                }) { api in
                    try await body(api, blobs)
                }
                group.cancelAll()
            }
        } catch {
            await publishing.close()
            await workerBroker.close()
            throw error
        }
        await publishing.close()
        await workerBroker.close()
    }

    /// An owner of `acme` (on plan pro), a viewer of it, and an outsider who owns `other`.
    static func accounts(_ api: APIClient, env: TestEnvironment) async throws -> (owner: Tokens, viewer: Tokens, outsider: Tokens, orgID: UUID) {
        let hash = try await PasswordHasher().hash(testPassword)
        for email in ["owner@example.com", "viewer@example.com", "outsider@example.com"] { _ = try await api.seedUser(email, passwordHash: hash) }
        let owner = try await api.login("owner@example.com")
        let outsider = try await api.login("outsider@example.com")
        #expect(try await api.call(.post, "/v1/orgs", token: owner.access, json: ["slug": "acme", "name": "Acme"]).status == 201)
        #expect(try await api.call(.post, "/v1/orgs", token: outsider.access, json: ["slug": "other", "name": "Other"]).status == 201)
        #expect(try await api.call(.put, "/v1/orgs/acme/subscription", token: owner.access, json: ["plan": "pro"]).status == 200)
        let orgID = try await env.database.withConnection { try await OrganizationAccountRepository(logger: env.logger).find(slug: "acme", on: $0)!.id }
        try await env.database.inTransaction { connection in
            let viewerID = try await UserRepository(logger: env.logger).find(email: "viewer@example.com", on: connection)!.id
            try await MembershipRepository(logger: env.logger).add(orgID: orgID, userID: viewerID, role: .viewer, on: connection)
        }
        return (owner, try await api.login("viewer@example.com"), outsider, orgID)
    }

    @Test func uploadProcessSearchReadTagReprocessAndDelete() async throws {
        try await TestEnvironment.with { env in
            try await Self.withStack(env) { api, blobs in try await Self.exercise(api, env: env, blobs: blobs) }
        }
    }

    static func exercise(_ api: APIClient, env: TestEnvironment, blobs: FileBlobStore) async throws {
        let (owner, viewer, outsider, orgID) = try await Self.accounts(api, env: env)

        // Upload three kinds of document in one request, with tags.
        let text = "Quarterly invoice 7731 for marmalade deliveries to the harbour warehouse.\n\nPayment is due in thirty days."
        var upload = MultipartBody()
        upload.file("bulletin.pdf", try Self.data("pdfs/born-digital/la-precinct-bulletin-2014-p1.pdf"))
        upload.file("linn.png", try Self.data("ocr-pages/ocrmypdf-linn/linn.png"))
        upload.file("nested/../invoice.txt", Array(text.utf8))
        upload.field("tags", "inbox, q3")
        let uploaded = try await api.call(.post, "/v1/orgs/acme/documents", token: owner.access, bytes: upload.bytes, headers: upload.headers)
        #expect(uploaded.status == 202, "\(uploaded.body)")
        let documents = uploaded["documents"] as? [[String: Any]] ?? []
        #expect(documents.map { $0["filename"] as? String } == ["bulletin.pdf", "linn.png", "invoice.txt"])
        #expect(documents.allSatisfy { $0["duplicate"] as? Bool == false && ($0["status"] as? String).map { ["queued", "processing", "succeeded"].contains($0) } == true })
        let ids = documents.compactMap { $0["id"] as? String }
        #expect(ids.count == 3)

        let statuses = try await Self.waitForTerminal(api, ids: ids, token: owner.access)
        #expect(statuses.values.allSatisfy { $0 == "succeeded" }, "\(statuses)")

        // Found by keyword search: text layer, OCR and plain text; filters and tenancy hold.
        for (query, expected) in [("marmalade invoice", ids[2]), ("LinnSequencer sequence recorder", ids[1]), ("precinct ballots cast", ids[0])] {
            let search = try await api.call(.post, "/v1/orgs/acme/search", token: viewer.access, json: ["query": query, "mode": "keyword"], audited: false)
            #expect(search.status == 200, "\(search.body)")
            let results = search["results"] as? [[String: Any]] ?? []
            #expect(results.first?["document_id"] as? String == expected.uppercased() || (results.first?["document_id"] as? String)?.lowercased() == expected.lowercased(), "\(query): \(search.body)")
            #expect((results.first?["snippet"] as? String)?.contains("<mark>") == true)
        }
        let filtered = try await api.call(
            .post, "/v1/orgs/acme/search", token: owner.access,
            json: ["query": "marmalade", "mode": "keyword", "filters": ["tags": ["no-such-tag"]]], audited: false)
        #expect(filtered.status == 200 && (filtered["results"] as? [Any])?.isEmpty == true)
        let badFilter = try await api.call(.post, "/v1/orgs/acme/search", token: owner.access, json: ["query": "x", "filters": ["colour": "red"]])
        #expect(badFilter.status == 400 && (badFilter.json["error"] as? [String: Any])?["field"] as? String == "filters.colour")
        #expect(try await api.call(.post, "/v1/orgs/acme/search", token: owner.access, json: ["query": "  "]).status == 400)
        let semantic = try await api.call(.post, "/v1/orgs/acme/search", token: owner.access, json: ["query": "marmalade", "mode": "semantic"], audited: false)
        #expect(semantic.status == 400, "no model on this server: semantic is refused with the reason")
        let theirs = try await api.call(.post, "/v1/orgs/other/search", token: outsider.access, json: ["query": "marmalade invoice", "mode": "keyword"], audited: false)
        #expect(theirs.status == 200 && (theirs["results"] as? [Any])?.isEmpty == true)

        // Read: list with filters and cursor, detail with timeline, text with sources, original bytes.
        let list = try await api.call(.get, "/v1/orgs/acme/documents?limit=2", token: viewer.access)
        #expect(list.status == 200 && (list["documents"] as? [Any])?.count == 2)
        let cursor = try #require(list.string("next_cursor"))
        let rest = try await api.call(.get, "/v1/orgs/acme/documents?limit=2&cursor=\(cursor)", token: viewer.access)
        #expect((rest["documents"] as? [Any])?.count == 1 && rest.json["next_cursor"] is NSNull)
        let tagged = try await api.call(.get, "/v1/orgs/acme/documents?tag=q3&status=succeeded", token: viewer.access)
        #expect((tagged["documents"] as? [Any])?.count == 3)
        let byName = try await api.call(.get, "/v1/orgs/acme/documents?q=linn", token: viewer.access)
        #expect((byName["documents"] as? [[String: Any]])?.map { $0["title"] as? String } == ["linn.png"])
        #expect(try await api.call(.get, "/v1/orgs/acme/documents?status=lost", token: viewer.access).status == 400)

        let detail = try await api.call(.get, "/v1/orgs/acme/documents/\(ids[1])", token: viewer.access)
        let timeline = detail["timeline"] as? [[String: Any]] ?? []
        #expect(Set(timeline.compactMap { $0["stage"] as? String }) == ["ingest", "ocr", "chunk", "index"], "\(detail.body)")
        #expect(timeline.allSatisfy { $0["status"] as? String == "succeeded" && $0["duration_ms"] is Int })
        #expect(detail["tags"] as? [String] == ["inbox", "q3"])
        let pages = try await api.call(.get, "/v1/orgs/acme/documents/\(ids[1])/text", token: viewer.access)
        let firstPage = (pages["pages"] as? [[String: Any]])?.first
        #expect(firstPage?["source"] as? String == "ocr" && (firstPage?["confidence"] as? Double ?? 0) > 50)
        #expect((firstPage?["text"] as? String)?.contains("LinnSequencer") == true)
        let original = try await api.call(.get, "/v1/orgs/acme/documents/\(ids[2])/content", token: viewer.access)
        #expect(original.status == 200 && original.body == text && original.headers[.contentType] == "text/plain")

        // A duplicate upload is counted, not processed again; an empty file and a non-multipart body are refused.
        var again = MultipartBody()
        again.file("copy.txt", Array(text.utf8))
        let duplicate = try await api.call(.post, "/v1/orgs/acme/documents", token: owner.access, bytes: again.bytes, headers: again.headers)
        #expect(duplicate.status == 202)
        let duplicated = (duplicate["documents"] as? [[String: Any]])?.first
        #expect(duplicated?["duplicate"] as? Bool == true && (duplicated?["id"] as? String)?.lowercased() == ids[2].lowercased())
        var empty = MultipartBody()
        empty.file("empty.txt", [])
        let refusedEmpty = try await api.call(.post, "/v1/orgs/acme/documents", token: owner.access, bytes: empty.bytes, headers: empty.headers)
        #expect(refusedEmpty.status == 400 && refusedEmpty.errorCode == "validation_failed")
        #expect(try await api.call(.post, "/v1/orgs/acme/documents", token: owner.access, raw: "{}").status == 415)
        var viewerUpload = MultipartBody()
        viewerUpload.file("v.txt", Array("viewer text".utf8))
        #expect(try await api.call(.post, "/v1/orgs/acme/documents", token: viewer.access, bytes: viewerUpload.bytes, headers: viewerUpload.headers).status == 403)
        #expect(try await env.count("SELECT count(*) FROM documents WHERE org_id = \(orgID)") == 3)

        // Tags, reprocess.
        let retagged = try await api.call(.put, "/v1/orgs/acme/documents/\(ids[2])/tags", token: owner.access, json: ["tags": ["paid", "invoice"]])
        #expect(retagged.status == 200 && retagged["tags"] as? [String] == ["invoice", "paid"])
        #expect(try await api.call(.put, "/v1/orgs/acme/documents/\(ids[2])/tags", token: owner.access, json: ["tags": [""]]).status == 400)
        let reprocessed = try await api.call(.post, "/v1/orgs/acme/documents/\(ids[2])/reprocess", token: owner.access)
        #expect(reprocessed.status == 202)
        #expect(try await Self.waitForTerminal(api, ids: [ids[2]], token: owner.access)[ids[2]] == "succeeded")
        #expect(try await env.count("SELECT count(*) FROM chunks WHERE document_id = \(UUID(uuidString: ids[2])!)") >= 1)

        // Analytics count what was done: three documents, four searches (one without results), every stage.
        let usage = try await api.call(.get, "/v1/orgs/acme/analytics/usage?bucket=hour", token: viewer.access)
        let series = usage["series"] as? [[String: Any]] ?? []
        #expect(usage.status == 200 && series.count >= 720, "\(usage.status)")
        #expect(series.reduce(0) { $0 + ($1["documents"] as? Int ?? 0) } == 3)
        #expect(series.reduce(0) { $0 + ($1["searches"] as? Int ?? 0) } == 4)
        #expect(series.reduce(0) { $0 + ($1["chunks"] as? Int ?? 0) } >= 3)
        #expect((series.last?["storage_bytes"] as? Int ?? 0) > text.utf8.count)
        #expect(try await api.call(.get, "/v1/orgs/acme/analytics/usage?bucket=minute", token: viewer.access).status == 400)
        #expect(try await api.call(.get, "/v1/orgs/acme/analytics/usage?from=yesterday", token: viewer.access).status == 400)
        let pipeline = try await api.call(.get, "/v1/orgs/acme/analytics/pipeline", token: viewer.access)
        let stages = pipeline["stages"] as? [[String: Any]] ?? []
        #expect(stages.map { $0["stage"] as? String } == ["ingest", "ocr", "chunk", "index"], "\(pipeline.body)")
        #expect(stages.allSatisfy { $0["processed"] as? Int == 3 && $0["failed"] as? Int == 0 && $0["p50_ms"] is Double })
        let searched = try await api.call(.get, "/v1/orgs/acme/analytics/search", token: viewer.access)
        #expect(searched["searches"] as? Int == 4)
        #expect((searched["top_queries"] as? [[String: Any]])?.contains { $0["query"] as? String == "marmalade invoice" && $0["count"] as? Int == 1 } == true)
        #expect((searched["no_results"] as? [[String: Any]])?.map { $0["query"] as? String } == ["marmalade"])
        #expect(try await api.call(.get, "/v1/orgs/acme/analytics/search", token: outsider.access).status == 404)
        let theirAnalytics = try await api.call(.get, "/v1/orgs/other/analytics/search", token: outsider.access)
        #expect(theirAnalytics["searches"] as? Int == 1, "only the other organisation's own search")

        // Another organisation sees none of it.
        for path in ["/v1/orgs/acme/documents", "/v1/orgs/acme/documents/\(ids[0])", "/v1/orgs/acme/documents/\(ids[0])/content"] {
            #expect(try await api.call(.get, path, token: outsider.access).status == 404)
        }
        #expect(try await api.call(.get, "/v1/orgs/other/documents/\(ids[0])", token: outsider.access).status == 404)
        #expect(try await api.call(.delete, "/v1/orgs/other/documents/\(ids[0])", token: outsider.access).status == 404)

        // Delete: gone from search at once, bytes removed, storage released.
        let sha = try #require((try await api.call(.get, "/v1/orgs/acme/documents/\(ids[2])", token: owner.access)).string("sha256"))
        #expect(try await api.call(.delete, "/v1/orgs/acme/documents/\(ids[2])", token: owner.access).status == 204)
        let after = try await api.call(.post, "/v1/orgs/acme/search", token: owner.access, json: ["query": "marmalade invoice", "mode": "keyword"], audited: false)
        #expect((after["results"] as? [Any])?.isEmpty == true, "\(after.body)")
        #expect(try await api.call(.get, "/v1/orgs/acme/documents/\(ids[2])", token: owner.access).status == 404)
        #expect(await blobs.contains(BlobKey(hex: sha)!) == false)
        #expect(try await env.count("SELECT count(*) FROM chunk_terms WHERE document_id = \(UUID(uuidString: ids[2])!)") == 0)
        try await api.expectAudited()
    }
}
