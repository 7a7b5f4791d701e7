import Foundation
import Search
import Storage
import Testing
import ZIPFoundation
import TestSupport

@Suite(.serialized)
struct ArchiveImportTests {
    @Test func zipMembersBecomeDocumentsAndBombsAndEscapesAreSkipped() async throws {
        try await TestEnvironment.with { env in
            let org = try await env.organization("zips")
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zip-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let path = folder + "/bundle.zip"
            let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .create)
            func add(_ name: String, _ bytes: [UInt8]) throws {
                try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(bytes.count), compressionMethod: .deflate) { position, size in
                    Data(bytes[Int(position)..<Int(position) + size])
                }
            }
            try add("letters/first.txt", Array("The quokka is a small marsupial.".utf8))
            try add("letters/second.md", Array("# Notes\n\nWombats dig burrows.".utf8))
            try add("../escape.txt", Array("should never be imported".utf8))
            try add("bomb.txt", [UInt8](repeating: 0x41, count: 2 << 20))

            let imported = try await env.importFiles([path], into: org, maxFileBytes: 1 << 20)
            #expect(imported.progress.stored == 2)
            #expect(imported.skipped.count == 2)
            #expect(imported.skipped.contains { $0.path.hasSuffix("../escape.txt") && $0.reason.contains("unsafe path") })
            #expect(imported.skipped.contains { $0.path.hasSuffix("bomb.txt") && $0.reason.contains("limit") })
            let state = try await env.withWorkers {
                try await env.wait(for: imported.documentIDs, orgID: org.id)
            }
            #expect(state.succeeded == 2)
            let hit = try await KeywordSearch(database: env.database).search("wombats", orgID: org.id)
            #expect(hit.first?.externalID == "bundle.zip/letters/second.md")
        }
    }
}
