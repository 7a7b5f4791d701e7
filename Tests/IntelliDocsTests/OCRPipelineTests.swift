import Blobs
import Extraction
import Foundation
import Importing
import Pipeline
import PostgresNIO
import Search
import Stages
import Storage
import Testing
import ZIPFoundation
import TestSupport

/// Scans, PDFs, images and DOCX through ingest → ocr → chunk → index against the real PostgreSQL and
/// RabbitMQ, with workers built by `StageCatalog` as `intellidocs run` builds them.
@Suite(.serialized)
struct OCRPipelineTests {
    /// The default stages with short retry delays; OCR limits small enough to test.
    static func pipeline(pageTimeout: String = "60s") throws -> PipelineDefinition {
        try PipelineDefinition.parse(
            """
            version: 1
            name: ocr-test
            defaults:
              max_attempts: 3
              retry_delays: [1s, 2s]
              delivery_limit: 5
              prefetch: 50
              batch_size: 20
              concurrency: 2
            stages:
              - name: ingest
              - name: ocr
                batch_size: 4
                options: {languages: eng, max_pages: 5, max_pixels: 50000000, page_timeout: \(pageTimeout), threads: 2}
              - name: chunk
                options: {max_tokens: 200, overlap: 30}
              - name: index
            """)
    }

    @Test func scansPDFsImagesAndWordDocumentsBecomeSearchable() async throws {
        let folder = try Self.folder([
            "mixed.pdf": try OCRTestFiles.unitedPDF(["pdfs/born-digital/scotus-transcript-p1.pdf", "ocr-pages/ocrmypdf-linn/linn.pdf"]),
            "cardinal.pdf": try OCRTestFiles.bytes("ocr-pages/ocrmypdf-linn/cardinal.pdf"),
            "receipt.png": try OCRTestFiles.bytes("ocr-pages/scribe-ocr-benchmark/img/receipt_03.png"),
            "report.docx": try OCRTestFiles.docx(paragraphs: ["Quarterly zeppelin report", "Revenue grew in every region."]),
            "notes.txt": Array("Plain notes about a walrus.\n".utf8),
            // Bad inputs: each fails with its reason, none stops the batch.
            "encrypted.pdf": OCRTestFiles.encryptedPDF,
            "corrupt.pdf": Array("%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref or trailer".utf8),
            "empty.pdf": OCRTestFiles.pdf(objects: ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [] /Count 0 >>"]),
            "long.pdf": try OCRTestFiles.bytes("pdfs/scanned/multipage.pdf"),
            "bomb.png": OCRTestFiles.bombPNG,
        ])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let pipeline = try Self.pipeline()

        try await TestEnvironment.with { env in
            let org = try await env.organization("scans")
            let imported = try await env.importFiles([folder], into: org, pipeline: pipeline)
            #expect(imported.progress.stored == 10)
            let waited = try await env.withWorkers(of: pipeline) {
                try await env.wait(for: imported.documentIDs, orgID: org.id, seconds: 300)
            }
            #expect(waited.succeeded == 5)
            #expect(waited.failed == 5)

            var ids: [String: UUID] = [:]
            for (id, path) in imported.sourcePaths { ids[(path as NSString).lastPathComponent] = id }
            let failures = try await DocumentRepository(env.database).failures(imported.documentIDs, orgID: org.id)
            var reasons: [String: String] = [:]
            for failure in failures { reasons[((failure.sourcePath ?? "") as NSString).lastPathComponent] = failure.error ?? "" }
            #expect(reasons["encrypted.pdf"]?.contains("password-protected") == true, "\(reasons["encrypted.pdf"] ?? "-")")
            #expect(reasons["corrupt.pdf"]?.contains("damaged") == true, "\(reasons["corrupt.pdf"] ?? "-")")
            #expect(reasons["empty.pdf"]?.contains("has no pages") == true, "\(reasons["empty.pdf"] ?? "-")")
            #expect(reasons["long.pdf"]?.contains("6 pages, more than the limit of 5") == true, "\(reasons["long.pdf"] ?? "-")")
            #expect(reasons["bomb.png"]?.contains("100000 × 100000") == true, "\(reasons["bomb.png"] ?? "-")")

            // The mixed PDF keeps its text layer on page 1 and OCRs page 2.
            let content = ContentRepository(logger: env.logger)
            let pages = try await env.database.client.withConnection { connection in
                try await content.pages(documentIDs: imported.documentIDs, orgID: org.id, on: connection)
            }
            let mixed = pages.filter { $0.documentID == ids["mixed.pdf"] }
            #expect(mixed.map(\.source) == [.textLayer, .ocr])
            #expect(mixed.first?.text.contains("SUPREME COURT") == true)
            #expect(mixed.last?.text.contains("LinnSequencer") == true)
            #expect((mixed.last?.confidence ?? 0) > 80)
            // Every page of the cardinal PDF (turned 0/90/180/270°) reads the same brochure.
            let cardinal = pages.filter { $0.documentID == ids["cardinal.pdf"] }
            #expect(cardinal.count == 4)
            #expect(cardinal.allSatisfy { $0.source == .ocr && $0.text.contains("LinnSequencer") && $0.text.contains("MIDI") })
            #expect(pages.filter { $0.documentID == ids["receipt.png"] }.map(\.source) == [.ocr])
            #expect(pages.filter { $0.documentID == ids["report.docx"] }.map(\.source) == [.text])
            #expect(!pages.contains { $0.needsOCR })
            // Documents without scans passed straight through the ocr stage.
            #expect(try await env.count(
                "SELECT count(*) FROM stage_runs WHERE stage = 'ocr' AND status = 'succeeded' AND document_id = \(ids["notes.txt"]!)") == 1)

            // OCR'd text is chunked, indexed and found by keyword search, like any other text.
            let search = KeywordSearch(database: env.database)
            let linn = try await search.search("LinnSequencer", orgID: org.id)
            #expect(Set(linn.map(\.documentID)) == Set([ids["mixed.pdf"]!, ids["cardinal.pdf"]!]))
            #expect(try await search.search("zeppelin", orgID: org.id).first?.documentID == ids["report.docx"])
            #expect(try await search.search("walrus", orgID: org.id).first?.documentID == ids["notes.txt"])
            let receiptTruth = try OCRTestFiles.text("ocr-pages/scribe-ocr-benchmark/truth_txt/receipt_03.txt")
            let receiptWord = try #require(receiptTruth.split(whereSeparator: { !$0.isLetter }).map(String.init).first { $0.count >= 7 })
            #expect(try await search.search(receiptWord, orgID: org.id).first?.documentID == ids["receipt.png"])

            // Running the ocr stage again on the same page replaces its result: still one row, same text.
            try await env.database.client.query(
                "UPDATE pages SET needs_ocr = true, text = '' WHERE document_id = \(ids["mixed.pdf"]!) AND page_number = 2",
                logger: env.logger)
            let stage = try OCRStage(blobs: env.blobs, options: pipeline.stage(named: "ocr")!.options)
            let context = StageContext(database: env.database, logger: env.logger, definition: pipeline.stage(named: "ocr")!)
            let job = Job(orgID: org.id, documentID: ids["mixed.pdf"]!, stage: "ocr")
            let results = await stage.prepare([job], context: context)
            let output = try results[0].get()
            try await env.database.client.withTransaction(logger: env.logger) { connection in
                try await stage.write([(job, output)], on: connection, context: context)
            }
            let again = try await env.database.client.withConnection { connection in
                try await content.pages(documentIDs: [ids["mixed.pdf"]!], orgID: org.id, on: connection)
            }
            #expect(again.count == 2)
            #expect(again.last?.text == mixed.last?.text && again.last?.needsOCR == false)
        }
    }

    @Test func pageOverTheTimeLimitFailsOnlyItsDocument() async throws {
        let folder = try Self.folder([
            "dense.png": try OCRTestFiles.bytes("ocr-pages/ocrmypdf-linn/linn.png"),
            "notes.txt": Array("Notes that need no OCR at all.\n".utf8),
        ])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let pipeline = try Self.pipeline(pageTimeout: "100ms")
        try await TestEnvironment.with { env in
            let org = try await env.organization("slow")
            let imported = try await env.importFiles([folder], into: org, pipeline: pipeline)
            let waited = try await env.withWorkers(of: pipeline) {
                try await env.wait(for: imported.documentIDs, orgID: org.id, seconds: 120)
            }
            #expect(waited.succeeded == 1 && waited.failed == 1)
            let failure = try #require(try await DocumentRepository(env.database).failures(imported.documentIDs, orgID: org.id).first)
            #expect(failure.failedStage == "ocr")
            #expect(failure.error?.contains("page 1: OCR of the page took longer than the 0.1 s per-page limit") == true, "\(failure.error ?? "-")")
        }
    }

    /// A pipeline without an ocr stage refuses scans at ingest instead of indexing empty pages.
    @Test func pipelineWithoutOCRStageRefusesScans() async throws {
        let pipeline = try PipelineDefinition.parse(
            "version: 1\nname: text-only\nstages:\n  - name: ingest\n  - name: chunk\n  - name: index\n")
        let reader = try DocumentReader(pipeline: pipeline)
        let scan = try OCRTestFiles.bytes("ocr-pages/ocrmypdf-linn/linn.pdf")
        let result = await reader.read(scan, as: TypeSniffer.sniff(scan, fileName: nil))
        #expect(throws: StageFailure.self) { try result.get() }
        if case .failure(let failure) = result {
            #expect(failure.kind == .permanent && failure.reason.contains("no ocr stage"))
        }
        #expect(throws: PipelineError.self) { try OCRStage.Options(["languages": "eng", "page_timeout": "soon"]) }
        #expect(throws: PipelineError.self) { try OCRStage.Options(["max_pixel": "5"]) }
    }

    static func folder(_ files: [String: [UInt8]]) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ocr-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, bytes) in files {
            _ = FileManager.default.createFile(atPath: "\(folder)/\(name)", contents: Data(bytes))
        }
        return folder
    }
}

extension TestEnvironment {
    /// Imports `paths` through the real importer, publishing to `pipeline`'s first stage.
    func importFiles(_ paths: [String], into organization: Organization, pipeline: PipelineDefinition) async throws -> ImportResult {
        let broker = try await broker("importer")
        do {
            try await Topology.apply(pipeline, broker: broker)
            let result = try await Importer(
                database: database, blobs: blobs, publisher: JobPublisher(broker: broker), pipeline: pipeline, logger: logger
            ).run(paths: paths, organization: organization, format: .auto)
            await broker.close()
            return result
        } catch {
            await broker.close()
            throw error
        }
    }

    /// Runs a worker for every stage of `pipeline`, built by `StageCatalog`, while `body` runs.
    func withWorkers<T: Sendable>(of pipeline: PipelineDefinition, _ body: @Sendable () async throws -> T) async throws -> T {
        let broker = try await broker("workers")
        do {
            try await Topology.apply(pipeline, broker: broker)
            let catalog = StageCatalog(blobs: blobs)
            let workers = try pipeline.stages.map {
                try catalog.worker(for: $0.name, pipeline: pipeline, broker: broker, database: database, logger: logger)
            }
            let result = try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in workers { group.addTask { try await worker.run() } }
                let result = try await body()
                group.cancelAll()
                return result
            }
            await broker.close()
            return result
        } catch {
            await broker.close()
            throw error
        }
    }
}

/// Test inputs: files from `<repo>/../shared/data` and hand-made bad ones.
enum OCRTestFiles {
    static let dataRoot = URL(fileURLWithPath: repositoryRoot).deletingLastPathComponent().appendingPathComponent("shared/data").path

    static func bytes(_ relativePath: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: "\(dataRoot)/\(relativePath)") else {
            throw TestFailure("test data missing: \(dataRoot)/\(relativePath)")
        }
        return [UInt8](data)
    }

    static func text(_ relativePath: String) throws -> String { String(decoding: try bytes(relativePath), as: UTF8.self) }

    /// Pages of shared PDFs joined by `pdfunite` (poppler-utils): e.g. a text page and a scanned page.
    static func unitedPDF(_ parts: [String]) throws -> [UInt8] {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("united-\(UUID().uuidString).pdf").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["pdfunite"] + parts.map { "\(dataRoot)/\($0)" } + [output]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let data = FileManager.default.contents(atPath: output) else {
            throw TestFailure("pdfunite failed (install poppler-utils)")
        }
        return [UInt8](data)
    }

    /// A PDF with a correct cross-reference table around `objects` (object 1 is the catalog).
    static func pdf(objects: [String], trailer: String = "") -> [UInt8] {
        var body = "%PDF-1.4\n"
        var offsets: [Int] = []
        for (index, object) in objects.enumerated() {
            offsets.append(body.utf8.count)
            body += "\(index + 1) 0 obj\n\(object)\nendobj\n"
        }
        let xref = body.utf8.count
        body += "xref\n0 \(objects.count + 1)\n0000000000 65535 f \n"
        for offset in offsets { body += String(format: "%010d 00000 n \n", offset) }
        body += "trailer\n<< /Size \(objects.count + 1) /Root 1 0 R \(trailer) >>\nstartxref\n\(xref)\n%%EOF\n"
        return Array(body.utf8)
    }

    /// One page behind the standard security handler with a user password we do not know.
    static var encryptedPDF: [UInt8] {
        let filler = String(repeating: "5A", count: 32)
        return pdf(
            objects: [
                "<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
                "<< /Filter /Standard /V 1 /R 2 /O <\(filler)> /U <\(filler)> /P -4 >>",
            ],
            trailer: "/Encrypt 4 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> <0123456789ABCDEF0123456789ABCDEF>]")
    }

    /// A PNG header claiming 100,000 × 100,000 pixels (a decompression bomb), with a valid CRC.
    static var bombPNG: [UInt8] {
        var chunk = Array("IHDR".utf8)
        for value in [UInt32(100_000), UInt32(100_000)] { chunk += withUnsafeBytes(of: value.bigEndian, Array.init) }
        chunk += [8, 0, 0, 0, 0]
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in chunk {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + chunk + withUnsafeBytes(of: (~crc).bigEndian, Array.init)
            + [0, 0, 0, 0] + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82]
    }

    /// A minimal DOCX: `word/document.xml` with one paragraph per string.
    static func docx(paragraphs: [String]) throws -> [UInt8] {
        let body = paragraphs.map { "<w:p><w:r><w:t>\($0)</w:t></w:r></w:p>" }.joined()
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>\(body)</w:body></w:document>"
        let archive = try Archive(accessMode: .create)
        let data = Data(xml.utf8)
        try archive.addEntry(with: "word/document.xml", type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate) { position, size in
            data.subdata(in: Int(position)..<Int(position) + size)
        }
        return [UInt8](archive.data ?? Data())
    }
}
