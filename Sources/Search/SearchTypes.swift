public import Foundation

/// Which legs a search uses.
public enum SearchMode: String, Sendable, Codable, CaseIterable {
    case hybrid, keyword, semantic
}

/// Restrictions applied inside every leg (before truncation), so a filter never empties a page that
/// other documents could have filled.
public struct SearchFilters: Sendable, Codable, Equatable {
    public var documentIDs: [UUID] = []
    /// Documents must carry every one of these tags.
    public var tags: [String] = []
    public var mimeTypes: [String] = []
    public var createdAfter: Date?
    public var createdBefore: Date?
    /// Leave out documents marked as near duplicates of an older one: the older one stands for them.
    public var collapseNearDuplicates = false

    public init(
        documentIDs: [UUID] = [], tags: [String] = [], mimeTypes: [String] = [], createdAfter: Date? = nil, createdBefore: Date? = nil,
        collapseNearDuplicates: Bool = false
    ) {
        self.documentIDs = documentIDs
        self.tags = tags
        self.mimeTypes = mimeTypes
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
        self.collapseNearDuplicates = collapseNearDuplicates
    }

    enum CodingKeys: String, CodingKey {
        case documentIDs = "document_ids", tags, mimeTypes = "mime_types", createdAfter = "created_after", createdBefore = "created_before"
        case collapseNearDuplicates = "collapse_near_duplicates"
    }

    /// Every key is optional: `{}` means no filter.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        documentIDs = try container.decodeIfPresent([UUID].self, forKey: .documentIDs) ?? []
        tags = try container.decodeIfPresent([String].self, forKey: .tags) ?? []
        mimeTypes = try container.decodeIfPresent([String].self, forKey: .mimeTypes) ?? []
        createdAfter = try container.decodeIfPresent(Date.self, forKey: .createdAfter)
        createdBefore = try container.decodeIfPresent(Date.self, forKey: .createdBefore)
        collapseNearDuplicates = try container.decodeIfPresent(Bool.self, forKey: .collapseNearDuplicates) ?? false
    }
}

public struct SearchRequest: Sendable {
    public var query: String
    public var mode: SearchMode
    public var limit: Int
    /// Opaque, from the previous page's `nextCursor`.
    public var cursor: String?
    public var filters: SearchFilters

    public init(query: String, mode: SearchMode = .hybrid, limit: Int = 10, cursor: String? = nil, filters: SearchFilters = SearchFilters()) {
        self.query = query
        self.mode = mode
        self.limit = limit
        self.cursor = cursor
        self.filters = filters
    }
}

/// A further matching chunk of the same document.
public struct Passage: Sendable, Codable, Equatable {
    public let page: Int
    public let score: Double
    public let snippet: String
}

/// One hit: a document, represented by its best-matching chunk.
public struct SearchResult: Sendable, Codable, Equatable {
    public let documentID: UUID
    public let externalID: String?
    public let title: String
    public let page: Int
    public let score: Double
    /// The best chunk's text around the matched terms, which are wrapped in `<mark>…</mark>`.
    public let snippet: String
    public let passages: [Passage]

    enum CodingKeys: String, CodingKey {
        case documentID = "document_id", externalID = "external_id", title, page, score, snippet, passages
    }
}

public struct SearchResponse: Sendable, Codable, Equatable {
    public let results: [SearchResult]
    public let nextCursor: String?

    enum CodingKeys: String, CodingKey { case results, nextCursor = "next_cursor" }
}

/// A bad search request; the message names the field.
public struct SearchError: Error, CustomStringConvertible, Sendable {
    public let field: String
    public let message: String
    public var description: String { message }
}

/// A scored chunk, as a leg ranks it.
public struct ChunkHit: Sendable, Hashable {
    public let documentID: UUID
    public let chunkIndex: Int
    public let score: Double

    public init(documentID: UUID, chunkIndex: Int, score: Double) {
        self.documentID = documentID
        self.chunkIndex = chunkIndex
        self.score = score
    }
}
