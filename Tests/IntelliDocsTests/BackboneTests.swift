import Broker
import Chunking
import Foundation
import Importing
import Pipeline
import PostgresNIO
import Search
import Stages
import Storage
import Testing
import TestSupport

/// The pipeline backbone against the real PostgreSQL and RabbitMQ of the local stack. Serialized: the
/// broker-restart and process-kill tests disturb shared services.
@Suite(.serialized)
struct BackboneTests {
    @Test func migrationsApplyOnceAndRefuseANewerSchema() async throws {
        try await TestEnvironment.with { env in
            // The environment already migrated an empty database; a second run is a no-op.
            let migrator = try Migrator()
            #expect(try await migrator.currentVersion(env.database) == migrator.latestVersion)
            #expect(try await migrator.migrate(env.database).isEmpty)
            #expect(try await env.count("SELECT count(*) FROM schema_migrations") == migrator.migrations.count)
            // A schema from the future is refused.
            try await env.database.client.query(
                "INSERT INTO schema_migrations (version, name) VALUES (\(migrator.latestVersion + 1), 'future')", logger: env.logger)
            await #expect(throws: StorageError.self) { try await migrator.migrate(env.database) }
        }
    }

    @Test func importIndexesTextDocumentsAndReimportCountsDuplicates() async throws {
        try await TestEnvironment.with { env in
            let org = try await env.organization("acme")
            let other = try await env.organization("other")
            let corpus = try generateTextCorpus(count: 200, extraFiles: [
                "empty.txt": [],
                "binary.txt": [0x00, 0x01, 0xFF, 0xFE, 0x00, 0x80, 0x81, 0x00, 0x13, 0x37],
                "latin1.txt": Array("caf\u{E9} au lait".utf8.prefix(3)) + [0xE9, 0x20, 0x61, 0x75],
                "page.html": Array("<html><head><title>T</title><script>var hidden = 'scriptword';</script></head><body><p>Visible zebra text &amp; more.</p></body></html>".utf8),
            ])
            defer { try? FileManager.default.removeItem(atPath: corpus) }

            let first = try await env.importFiles([corpus], into: org)
            #expect(first.progress.found == 204)
            #expect(first.progress.stored == 204)
            #expect(first.progress.duplicates == 0)
            let waited = try await env.withWorkers {
                try await env.wait(for: first.documentIDs, orgID: org.id)
            }
            #expect(waited.total == 204)
            #expect(waited.succeeded == 201)
            #expect(waited.failed == 3)

            // Bad files failed with reasons a person can act on.
            let failures = try await DocumentRepository(env.database).failures(first.documentIDs, orgID: org.id)
            var reasons: [String: String] = [:]
            for failure in failures { reasons[((failure.sourcePath ?? "") as NSString).lastPathComponent] = failure.error ?? "" }
            #expect(reasons["empty.txt"]?.contains("empty") == true)
            #expect(reasons["binary.txt"]?.contains("binary") == true)
            #expect(reasons["latin1.txt"]?.contains("UTF-8") == true)

            // Every good document has pages and chunks, and is searchable.
            let stats = try await OrganizationStats.load(orgID: org.id, database: env.database)
            #expect(stats.documents.succeeded == 201)
            #expect(stats.pages == 201)
            #expect(stats.chunks >= 201)
            let hits = try await KeywordSearch(database: env.database).search("token17x", orgID: org.id)
            #expect(hits.first?.externalID == "nested/doc-17.txt")
            #expect(hits.first?.snippet.contains("<mark>") == true)
            let html = try await KeywordSearch(database: env.database).search("zebra", orgID: org.id)
            #expect(html.first?.title == "page.html")
            #expect(try await KeywordSearch(database: env.database).search("scriptword", orgID: org.id).isEmpty)
            // Tenancy: another organisation sees nothing.
            #expect(try await KeywordSearch(database: env.database).search("token17x", orgID: other.id).isEmpty)

            // Re-import: all duplicates, nothing created, nothing published.
            let documentsBefore = try await env.count("SELECT count(*) FROM documents")
            let chunksBefore = try await env.count("SELECT count(*) FROM chunks")
            let second = try await env.importFiles([corpus], into: org)
            #expect(second.progress.duplicates == 204)
            #expect(second.progress.stored == 0)
            #expect(second.progress.published == 0)
            #expect(Set(second.documentIDs) == Set(first.documentIDs))
            #expect(try await env.count("SELECT count(*) FROM documents") == documentsBefore)
            #expect(try await env.count("SELECT count(*) FROM chunks") == chunksBefore)
        }
    }

    @Test func transientFaultsRetryAndPermanentFaultsDeadLetterThenReplay() async throws {
        try await TestEnvironment.with { env in
            let org = try await env.organization("faults")
            let corpus = try generateTextCorpus(count: 6)
            defer { try? FileManager.default.removeItem(atPath: corpus) }
            let imported = try await env.importFiles([corpus], into: org)
            let transient = imported.documentIDs[0]
            let permanent = imported.documentIDs[1]
            let permanentSwitch = FaultSwitch([permanent])

            try await env.withWorkers(wrapChunk: {
                FaultyStage(wrapped: $0, transientAttempts: 2, transientDocuments: [transient], permanent: permanentSwitch)
            }) {
                let state = try await env.wait(for: imported.documentIDs, orgID: org.id, seconds: 60)
                #expect(state.succeeded == 5)
                #expect(state.failed == 1)
                // Progress per stage: the failed document got through ingest only.
                #expect(state.stages == ["ingest": 6, "chunk": 5, "index": 5])

                // The transient fault was retried twice (through the 1 s and 2 s retry queues), then succeeded.
                let attempts = try await env.count(
                    "SELECT attempts FROM stage_runs WHERE document_id = \(transient) AND stage = 'chunk' AND status = 'succeeded'")
                #expect(attempts == 3)

                // The permanent fault is in chunk's dead-letter queue with its reason; the document is failed.
                let document = try await DocumentRepository(env.database).get(permanent, orgID: org.id)
                #expect(document?.status == .failed)
                #expect(document?.failedStage == "chunk")
                #expect(document?.error == "injected permanent fault")
                let broker = try await env.broker("dlq")
                let dlq = DeadLetterQueue(broker: broker, database: env.database, stage: testPipeline.stage(named: "chunk")!, logger: env.logger)
                let letters = try await dlq.list(limit: 10)
                #expect(letters.count == 1)
                #expect(letters.first?.documentID == permanent)
                #expect(letters.first?.reason == "injected permanent fault")
                #expect(letters.first?.failure == "permanent")

                // Remove the cause, replay: the document completes.
                permanentSwitch.clear()
                #expect(try await dlq.replay(limit: 10) == 1)
                let after = try await env.wait(for: [permanent], orgID: org.id, seconds: 30)
                #expect(after.succeeded == 1)
                #expect(try await dlq.list(limit: 10).isEmpty)
                await broker.close()
            }
        }
    }

    @Test func malformedJobsAreDeadLetteredWithAReason() async throws {
        try await TestEnvironment.with { env in
            try await env.withWorkers {
                let broker = try await env.broker("raw")
                try await broker.publish(routingKey: "ingest", body: Array("{not json".utf8))
                let dlq = DeadLetterQueue(broker: broker, database: env.database, stage: testPipeline.stage(named: "ingest")!, logger: env.logger)
                var letters: [DeadLetter] = []
                let deadline = ContinuousClock.now + .seconds(10)
                while letters.isEmpty, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    letters = try await dlq.list(limit: 5)
                }
                #expect(letters.count == 1)
                #expect(letters.first?.failure == "malformed")
                #expect(letters.first?.reason.contains("malformed job envelope") == true)
                await broker.close()
            }
        }
    }

    @Test func beirImportKeepsExternalIDsAndSkipsBadLines() async throws {
        try await TestEnvironment.with { env in
            let org = try await env.organization("beir")
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("beir-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let lines = [
                #"{"_id": "4983", "title": "Microstructural development of human newborn cerebral white matter", "text": "Alterations of the architecture of cerebral white matter in the developing human brain."}"#,
                #"{"_id": "5836", "title": "Induction of myelodysplasia", "text": "Myelodysplastic syndromes (MDS) are age-dependent stem cell malignancies."}"#,
                #"{"_id": 7912, "title": "", "text": "Numeric identifiers are kept as text."}"#,
                #"{"title": "no id"}"#,
                #"this is not json"#,
            ]
            try lines.joined(separator: "\n").write(toFile: folder + "/corpus.jsonl", atomically: true, encoding: .utf8)
            let imported = try await env.importFiles([folder], into: org, format: .beir)
            #expect(imported.progress.found == 5)
            #expect(imported.progress.stored == 3)
            #expect(imported.skipped.count == 2)
            #expect(imported.skipped.contains { $0.reason.contains("line 4") && $0.reason.contains("_id") })
            #expect(imported.skipped.contains { $0.reason.contains("line 5") })
            try await env.withWorkers {
                let state = try await env.wait(for: imported.documentIDs, orgID: org.id)
                #expect(state.succeeded == 3)
            }
            let hits = try await KeywordSearch(database: env.database).search("myelodysplastic stem cells", orgID: org.id)
            #expect(hits.first?.externalID == "5836")
            #expect(try await KeywordSearch(database: env.database).search("numeric identifiers", orgID: org.id).first?.externalID == "7912")
        }
    }

    @Test func pipelineDefinitionErrorsNameTheLine() throws {
        #expect(throws: PipelineError.self) { try PipelineDefinition.parse("version: 1\nstages: []\n") }
        do {
            _ = try PipelineDefinition.parse("version: 1\nname: x\nstages:\n  - name: ingest\n    retry_delays: [5 parsecs]\n", file: "p.yml")
            Issue.record("a bad delay was accepted")
        } catch {
            #expect(error.message.hasPrefix("p.yml:5:"))
            #expect(error.message.contains("5 parsecs"))
        }
        do {
            _ = try PipelineDefinition.parse("version: 1\nstages:\n  - name: ingest\n  - nmae: chunk\n", file: "p.yml")
            Issue.record("an unknown key was accepted")
        } catch {
            #expect(error.message.hasPrefix("p.yml:4:"))
        }
        let pipeline = try PipelineDefinition.load(path: repositoryRoot + "/pipelines/default.yml")
        try StageCatalog.validate(pipeline)
        #expect(pipeline.stages.map(\.name) == ["ingest", "ocr", "chunk", "embed", "index"])
        #expect(pipeline.stage(named: "chunk")?.retryQueues == ["chunk.retry.5s", "chunk.retry.30s", "chunk.retry.5m"])
    }
}
