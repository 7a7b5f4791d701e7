public import Foundation
import Logging
import PostgresNIO
public import Storage

/// The vector leg, plugged in when the embedding model is available.
public protocol SemanticRetrieving: Sendable {
    /// `context`: what the search already read (index versions, allowed documents); nil reads them here.
    func retrieve(_ query: String, orgID: UUID, filters: SearchFilters, limit: Int, context: QueryContext?) async throws -> [ChunkHit]
    /// Loads what the leg keeps in memory for the organisation (and waits for a graph being built).
    func warmUp(orgID: UUID) async throws
    /// Ends background work (graph builds) before the process exits; searches still work after it.
    func shutDown() async
}

extension SemanticRetrieving {
    public func warmUp(orgID: UUID) async throws {}
    public func shutDown() async {}
}

/// Search over one organisation's processed documents: BM25 keywords, vectors, or both fused with
/// reciprocal rank fusion; chunks grouped by document (best chunk first, the next ones as passages);
/// filters applied inside each leg; cursor pagination; highlighted snippets. Used by the CLI and the API.
public struct SearchService: Sendable {
    let database: Database
    let keyword: KeywordRetriever
    let semantic: (any SemanticRetrieving)?
    /// RRF's constant: ranks matter, scores of different legs are never compared.
    public var rrfK = 60.0
    /// Chunks each leg contributes before fusion and grouping.
    public var candidates = 200
    /// Extra passages shown per document.
    public var passagesPerResult = 2

    public var hasSemanticLeg: Bool { semantic != nil }

    /// Loads the organisation's in-memory indexes now (keywords, if this service keeps them in memory;
    /// vectors, waiting for a graph being built): a searcher about to be measured.
    public func warmUp(orgID: UUID) async throws {
        try await keyword.index?.warm(orgID)
        try await semantic?.warmUp(orgID: orgID)
    }

    /// Ends background work before the process exits: the vector index's graph builds stop at their next
    /// batch. Long-running searchers call it on shutdown.
    public func shutDown() async {
        await semantic?.shutDown()
    }

    /// `keywordIndex`: BM25 from memory for long-running searchers (the API, benchmarks, evaluation); a
    /// one-shot command leaves it out and asks SQL.
    public init(
        database: Database, semantic: (any SemanticRetrieving)? = nil, keywordIndex: KeywordIndex? = nil, k1: Double = 0.9, b: Double = 0.4
    ) {
        self.database = database
        self.keyword = KeywordRetriever(database: database, k1: k1, b: b, index: keywordIndex)
        self.semantic = semantic
    }

    public func search(_ request: SearchRequest, orgID: UUID) async throws -> SearchResponse {
        let query = request.query.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !query.isEmpty else { throw SearchError(field: "query", message: "query must not be empty") }
        guard query.count <= 2000 else { throw SearchError(field: "query", message: "query is longer than 2000 characters") }
        guard (1...100).contains(request.limit) else { throw SearchError(field: "limit", message: "limit must be between 1 and 100") }
        let offset = try Self.offset(from: request.cursor)
        let wanted = offset + request.limit
        let depth = max(candidates, wanted * 4)
        if request.mode != .keyword, semantic == nil { throw Self.noModel }
        let context = try await QueryContext.read(query: query, orgID: orgID, filters: request.filters, database: database)

        var ranked: [ChunkHit]
        switch request.mode {
        case .keyword:
            ranked = try await keyword.retrieve(query, orgID: orgID, filters: request.filters, limit: depth, context: context)
        case .semantic:
            ranked = try await semanticHits(query, orgID: orgID, filters: request.filters, limit: depth, context: context)
        case .hybrid:
            async let lexical = keyword.retrieve(query, orgID: orgID, filters: request.filters, limit: depth, context: context)
            let vector = try await semanticHits(query, orgID: orgID, filters: request.filters, limit: depth, context: context)
            ranked = fuse([try await lexical, vector])
        }

        // Group by document: the best chunk represents it, the next ones become passages. Only the
        // documents up to this page, and one more to know whether a next page exists, are kept.
        var order: [UUID] = []
        var slots: [UUID: Int] = [:]
        var grouped: [[ChunkHit]] = []
        for hit in ranked {
            if let slot = slots[hit.documentID] {
                if grouped[slot].count <= passagesPerResult { grouped[slot].append(hit) }
            } else if order.count <= wanted {
                slots[hit.documentID] = order.count
                order.append(hit.documentID)
                grouped.append([hit])
            }
        }
        let page = Array(order.dropFirst(offset).prefix(request.limit))
        let nextCursor = order.count > wanted ? Self.cursor(offset: wanted) : nil
        let byDocument = { (id: UUID) in slots[id].map { grouped[$0] } ?? [] }
        let shown = page.flatMap { byDocument($0) }
        let details = try await loadDetails(shown, lexemes: context.lexemes, orgID: orgID)
        let results: [SearchResult] = page.compactMap { id in
            let hits = byDocument(id)
            guard let best = hits.first, let document = details.documents[id],
                let bestChunk = details.chunks[ChunkKey(best)]
            else { return nil }
            let passages = hits.dropFirst().prefix(passagesPerResult).compactMap { hit -> Passage? in
                guard let chunk = details.chunks[ChunkKey(hit)] else { return nil }
                return Passage(page: chunk.page, score: hit.score, snippet: chunk.snippet)
            }
            return SearchResult(
                documentID: id, externalID: document.externalID, title: document.title, page: bestChunk.page,
                score: best.score, snippet: bestChunk.snippet, passages: passages)
        }
        return SearchResponse(results: results, nextCursor: nextCursor)
    }

    private static let noModel = SearchError(
        field: "mode",
        message: "semantic and hybrid search need the embedding model; set INTELLIDOCS_MODEL_DIR (deploy/local/stack up installs it) or use mode keyword")

    private func semanticHits(_ query: String, orgID: UUID, filters: SearchFilters, limit: Int, context: QueryContext) async throws -> [ChunkHit] {
        guard let semantic else { throw Self.noModel }
        return try await semantic.retrieve(query, orgID: orgID, filters: filters, limit: limit, context: context)
    }

    /// Reciprocal rank fusion over chunk rankings. Ties (common: the same rank in one leg only) are
    /// broken by document id and chunk index, so equal inputs always give the same order.
    func fuse(_ rankings: [[ChunkHit]]) -> [ChunkHit] {
        let total = rankings.reduce(0) { $0 + $1.count }
        var position: [ChunkKey: Int] = [:]
        var keys: [ChunkKey] = []
        var scores: [Double] = []
        position.reserveCapacity(total)
        keys.reserveCapacity(total)
        scores.reserveCapacity(total)
        for ranking in rankings {
            for (rank, hit) in ranking.enumerated() {
                let key = ChunkKey(hit)
                let share = 1 / (rrfK + Double(rank + 1))
                if let at = position[key] {
                    scores[at] += share
                } else {
                    position[key] = keys.count
                    keys.append(key)
                    scores.append(share)
                }
            }
        }
        return keys.indices
            .sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : (keys[$0].documentID, keys[$0].chunkIndex) < (keys[$1].documentID, keys[$1].chunkIndex) }
            .map { ChunkHit(documentID: keys[$0].documentID, chunkIndex: keys[$0].chunkIndex, score: scores[$0]) }
    }

    struct ChunkKey: Hashable {
        let documentID: UUID
        let chunkIndex: Int
        init(_ hit: ChunkHit) {
            documentID = hit.documentID
            chunkIndex = hit.chunkIndex
        }
        init(documentID: UUID, chunkIndex: Int) {
            self.documentID = documentID
            self.chunkIndex = chunkIndex
        }
    }

    struct Details {
        var documents: [UUID: (externalID: String?, title: String)] = [:]
        var chunks: [ChunkKey: (page: Int, snippet: String)] = [:]
    }

    /// Titles and texts of the chunks on this page, in one query; the snippets are highlighted here
    /// (`Snippets`, with the lexemes the search read first), not by `ts_headline`.
    private func loadDetails(_ hits: [ChunkHit], lexemes: [String], orgID: UUID) async throws -> Details {
        var details = Details()
        if hits.isEmpty { return details }
        let rows = try await database.client.execute(
            DetailsStatement(documents: hits.map(\.documentID), chunks: hits.map { Int32($0.chunkIndex) }, orgID: orgID), logger: database.logger)
        let stems = Snippets.stems(lexemes)
        for try await (document, chunk, page, external, title, text) in rows {
            details.documents[document] = (external, title)
            details.chunks[ChunkKey(documentID: document, chunkIndex: Int(chunk))] = (Int(page), Snippets.highlight(text, stems: stems))
        }
        return details
    }

    /// Prepared once per connection (it runs for every search). Texts are cut at 20,000 characters, but
    /// `left` walks every character of its input to count them (1% of the CPU of a SciFact hybrid
    /// benchmark), so only a text longer than that many bytes goes through it.
    struct DetailsStatement: PostgresPreparedStatement {
        static let sql = """
            SELECT c.document_id, c.chunk_index, c.page_number, d.external_id, d.title,
                   CASE WHEN octet_length(c.text) <= 20000 THEN c.text ELSE left(c.text, 20000) END
            FROM unnest($1::uuid[], $2::int[]) AS h(document_id, chunk_index)
            JOIN chunks c ON c.document_id = h.document_id AND c.chunk_index = h.chunk_index AND c.org_id = $3 AND c.indexed
            JOIN documents d ON d.id = c.document_id AND d.org_id = $3
            """
        typealias Row = (UUID, Int32, Int32, String?, String, String)

        let documents: [UUID]
        let chunks: [Int32]
        let orgID: UUID

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings()
            bindings.append(documents)
            bindings.append(chunks)
            bindings.append(orgID)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    static func cursor(offset: Int) -> String {
        Data("o:\(offset)".utf8).base64EncodedString()
    }

    static func offset(from cursor: String?) throws -> Int {
        guard let cursor, !cursor.isEmpty else { return 0 }
        guard let data = Data(base64Encoded: cursor), let text = String(data: data, encoding: .utf8), text.hasPrefix("o:"),
            let offset = Int(text.dropFirst(2)), offset >= 0, offset <= 10_000
        else { throw SearchError(field: "cursor", message: "cursor is not one this service issued; start again without it") }
        return offset
    }
}

/// The old keyword-only entry point, kept for callers that want a plain list.
public struct KeywordSearch: Sendable {
    let service: SearchService
    public init(database: Database) { service = SearchService(database: database) }

    public func search(_ query: String, orgID: UUID, limit: Int = 10) async throws -> [SearchResult] {
        if query.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return [] }
        return try await service.search(SearchRequest(query: query, mode: .keyword, limit: min(max(limit, 1), 100)), orgID: orgID).results
    }
}
