import Blobs
import ControlPlane
import Foundation
import HTTPTypes
import Storage
import Testing
import ZIPFoundation
import TestSupport

/// Imports (a .zip over HTTP, followed to the end) and share links (password, view limit, expiry,
/// revocation, downloads, tenancy), against the real server, workers, PostgreSQL and RabbitMQ.
@Suite(.serialized)
struct ImportsAndShareLinksAPITests {
    static func zip(_ members: [(String, [UInt8])]) throws -> [UInt8] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bundle-\(UUID().uuidString).zip").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .create)
        for (name, bytes) in members {
            try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(bytes.count), compressionMethod: .deflate) { position, size in
                Data(bytes[Int(position)..<Int(position) + size])
            }
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw TestFailure("zip not written") }
        return [UInt8](data)
    }

    @Test func zipImportIsFollowedToTheEndAndShareLinksKeepTheirLimits() async throws {
        try await TestEnvironment.with { env in
            try await DocumentsAPITests.withStack(env) { api, _ in
                let (owner, viewer, outsider, orgID) = try await DocumentsAPITests.accounts(api, env: env)

                // Import a zip: safe members become documents, an escaping path is skipped with its reason.
                var body = MultipartBody()
                body.file("bundle.zip", try Self.zip([
                    ("letters/first.txt", Array("The quokka is a small marsupial of Rottnest Island.".utf8)),
                    ("letters/second.md", Array("# Notes\n\nWombats dig long burrows in the hills.".utf8)),
                    ("../escape.txt", Array("never imported".utf8)),
                ]))
                let created = try await api.call(.post, "/v1/orgs/acme/imports", token: owner.access, bytes: body.bytes, headers: body.headers)
                #expect(created.status == 202, "\(created.body)")
                #expect(created["found"] as? Int == 2 && created["stored"] as? Int == 2 && created["skipped"] as? Int == 1)
                let skipped = created["skipped_files"] as? [[String: String]] ?? []
                #expect(skipped.first?["file"] == "../escape.txt" && skipped.first?["reason"]?.contains("unsafe path") == true, "\(skipped)")
                #expect(!created.body.contains(FileManager.default.temporaryDirectory.path), "no server path leaks")
                let importID = try #require(created.string("id"))
                var summary = created
                for _ in 0..<300 where (summary["in_progress"] as? Int ?? 1) > 0 {
                    try await Task.sleep(for: .milliseconds(200))
                    summary = try await api.call(.get, "/v1/orgs/acme/imports/\(importID)", token: viewer.access)
                }
                #expect(summary["succeeded"] as? Int == 2 && summary["failed"] as? Int == 0 && summary["status"] as? String == "completed", "\(summary.body)")
                #expect(try await api.call(.get, "/v1/orgs/other/imports/\(importID)", token: outsider.access).status == 404)
                var notAZip = MultipartBody()
                notAZip.file("notes.txt", Array("plain".utf8))
                #expect(try await api.call(.post, "/v1/orgs/acme/imports", token: owner.access, bytes: notAZip.bytes, headers: notAZip.headers).status == 400)
                var broken = MultipartBody()
                broken.file("broken.zip", Array("PK but not really a zip".utf8))
                let brokenReply = try await api.call(.post, "/v1/orgs/acme/imports", token: owner.access, bytes: broken.bytes, headers: broken.headers)
                #expect(brokenReply.status == 400 && brokenReply.errorCode == "validation_failed", "\(brokenReply.body)")

                let listed = try await api.call(.get, "/v1/orgs/acme/documents?q=second", token: owner.access)
                let document = try #require((listed["documents"] as? [[String: Any]])?.first)
                #expect(document["external_id"] as? String == "bundle.zip/letters/second.md")
                let documentID = try #require(document["id"] as? String)

                // A link with a password and two views.
                let link = try await api.call(
                    .post, "/v1/orgs/acme/documents/\(documentID)/share-links", token: owner.access,
                    json: ["expires_in": 3600, "password": "open sesame", "max_views": 2, "allow_download": false])
                #expect(link.status == 201, "\(link.body)")
                let token = try #require(link.string("token"))
                let linkID = try #require(link.string("id"))
                #expect(link.string("url") == "/v1/shared/\(token)")
                #expect(try await api.call(.post, "/v1/orgs/acme/documents/\(documentID)/share-links", token: viewer.access, json: ["expires_in": 3600]).status == 403)
                #expect(try await api.call(.post, "/v1/orgs/acme/documents/\(documentID)/share-links", token: owner.access, json: ["max_views": 2]).status == 400)
                // A document of another organisation cannot be shared from there.
                #expect(try await api.call(.post, "/v1/orgs/other/documents/\(documentID)/share-links", token: outsider.access, json: ["expires_in": 3600]).status == 404)

                let password: HTTPFields = [HTTPField.Name("X-Share-Password")!: "open sesame"]
                let noPassword = try await api.call(.get, "/v1/shared/\(token)")
                #expect(noPassword.status == 401 && noPassword.errorCode == "share_password_required")
                let wrong = try await api.call(.get, "/v1/shared/\(token)", headers: [HTTPField.Name("X-Share-Password")!: "guess"])
                #expect(wrong.status == 401 && wrong.errorCode == "invalid_share_password")
                let first = try await api.call(.get, "/v1/shared/\(token)", headers: password)
                #expect(first.status == 200 && first["views"] as? Int == 1, "\(first.body)")
                #expect(((first["pages"] as? [[String: Any]])?.first?["text"] as? String)?.contains("Wombats") == true)
                #expect(first["org_id"] == nil && !first.body.contains(orgID.uuidString), "no organisation id on the public side")
                let download = try await api.call(.get, "/v1/shared/\(token)/content", headers: password)
                #expect(download.status == 403 && download.errorCode == "download_not_allowed")
                #expect(try await api.call(.get, "/v1/shared/\(token)", headers: password).status == 200)
                let exhausted = try await api.call(.get, "/v1/shared/\(token)", headers: password)
                #expect(exhausted.status == 410 && exhausted.errorCode == "share_link_gone")
                #expect(try await api.call(.get, "/v1/shared/shr_not-a-real-token").status == 404)

                // Lifting the view limit reopens it; expiry and revocation close it.
                let lifted = try await api.call(.patch, "/v1/orgs/acme/share-links/\(linkID)", token: owner.access, json: ["max_views": NSNull(), "password": NSNull()])
                #expect(lifted.status == 200 && lifted.json["max_views"] is NSNull && lifted["has_password"] as? Bool == false, "\(lifted.body)")
                #expect(try await api.call(.get, "/v1/shared/\(token)").status == 200)
                try await env.execute("UPDATE share_links SET expires_at = now() - interval '1 second' WHERE id = \(UUID(uuidString: linkID)!)")
                #expect(try await api.call(.get, "/v1/shared/\(token)").status == 410)

                let open = try await api.call(
                    .post, "/v1/orgs/acme/documents/\(documentID)/share-links", token: owner.access, json: ["expires_in": 600, "allow_download": true])
                let openToken = try #require(open.string("token"))
                let bytes = try await api.call(.get, "/v1/shared/\(openToken)/content")
                #expect(bytes.status == 200 && bytes.body == "# Notes\n\nWombats dig long burrows in the hills.")
                #expect(try await api.call(.delete, "/v1/orgs/acme/share-links/\(try #require(open.string("id")))", token: owner.access).status == 204)
                #expect(try await api.call(.get, "/v1/shared/\(openToken)").status == 410)

                let links = try await api.call(.get, "/v1/orgs/acme/share-links", token: owner.access)
                #expect((links["share_links"] as? [Any])?.count == 2 && !links.body.contains(token) && !links.body.contains(openToken))
                #expect(try await api.call(.get, "/v1/orgs/acme/share-links", token: viewer.access).status == 403)
                #expect(try await api.call(.get, "/v1/orgs/acme/share-links", token: outsider.access).status == 404)
                // Every view counted and audited: 2 + 1 views of the first link, 1 download of the second.
                #expect(try await env.count("SELECT count(*) FROM audit_log WHERE action = 'share_link.viewed' AND org_id = \(orgID)") == 3)
                #expect(try await env.count("SELECT count(*) FROM audit_log WHERE action = 'share_link.downloaded' AND org_id = \(orgID)") == 1)
                try await api.expectAudited()
            }
        }
    }
}
