public import Foundation
import Logging
import PostgresNIO

/// An organisation: the tenant every other row belongs to.
public struct Organization: Sendable, Equatable, Codable {
    public let id: UUID
    public let slug: String
    public let name: String
}

/// Organisations by id or slug.
public struct OrganizationRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// Creates an organisation; a taken slug is a `conflict` error.
    public func create(slug: String, name: String) async throws -> Organization {
        guard slug.range(of: "^[a-z0-9][a-z0-9-]{0,62}$", options: .regularExpression) != nil else {
            throw StorageError(
                code: .conflict,
                message: "organisation slug '\(slug)' is invalid: use 1-63 lower-case letters, digits and '-', starting with a letter or digit")
        }
        let id = UUID()
        let rows = try await database.client.query(
            """
            INSERT INTO organizations (id, slug, name) VALUES (\(id), \(slug), \(name))
            ON CONFLICT (slug) DO NOTHING RETURNING id
            """, logger: database.logger)
        for try await _ in rows { return Organization(id: id, slug: slug, name: name) }
        throw StorageError(code: .conflict, message: "organisation '\(slug)' already exists")
    }

    public func find(slug: String) async throws -> Organization? {
        let rows = try await database.client.query(
            "SELECT id, slug, name FROM organizations WHERE slug = \(slug)", logger: database.logger)
        for try await (id, slug, name) in rows.decode((UUID, String, String).self) {
            return Organization(id: id, slug: slug, name: name)
        }
        return nil
    }

    /// Like `find`, but an unknown slug is an error that says how to create it.
    public func require(slug: String) async throws -> Organization {
        guard let organization = try await find(slug: slug) else {
            throw StorageError.notFound(
                "organisation '\(slug)' does not exist; create it with `intellidocs org create \(slug)`")
        }
        return organization
    }

    public func find(id: UUID) async throws -> Organization? {
        let rows = try await database.client.query(
            "SELECT id, slug, name FROM organizations WHERE id = \(id)", logger: database.logger)
        for try await (id, slug, name) in rows.decode((UUID, String, String).self) {
            return Organization(id: id, slug: slug, name: name)
        }
        return nil
    }
}
