import Foundation
import Hummingbird
import Search
import Storage

/// `POST /v1/orgs/{org}/search`: the CLI's search service over HTTP, within the organisation only,
/// counted against the plan's searches per minute (`429` + `Retry-After`) and metered.
struct SearchController {
    let services: APIServices

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.post("search", use: search)
    }

    struct FiltersInput: Decodable {
        static let fields: Set<String> = ["document_ids", "tags", "mime_types", "created_after", "created_before", "collapse_near_duplicates"]
        let filters: SearchFilters
        let keys: [String]

        enum Keys: String, CodingKey {
            case documentIDs = "document_ids", tags, mimeTypes = "mime_types", createdAfter = "created_after", createdBefore = "created_before"
            case collapseNearDuplicates = "collapse_near_duplicates"
        }

        init(from decoder: any Decoder) throws {
            struct AnyKey: CodingKey {
                var stringValue: String
                var intValue: Int? { nil }
                init?(stringValue: String) { self.stringValue = stringValue }
                init?(intValue: Int) { nil }
            }
            keys = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
            let formatter = ISO8601DateFormatter()
            let container = try decoder.container(keyedBy: Keys.self)
            func date(_ key: Keys) throws -> Date? {
                guard let text = try container.decodeIfPresent(String.self, forKey: key) else { return nil }
                guard let date = formatter.date(from: text) else {
                    throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "an ISO 8601 time such as 2026-01-31T00:00:00Z")
                }
                return date
            }
            filters = SearchFilters(
                documentIDs: try container.decodeIfPresent([UUID].self, forKey: .documentIDs) ?? [],
                tags: try container.decodeIfPresent([String].self, forKey: .tags) ?? [],
                mimeTypes: try container.decodeIfPresent([String].self, forKey: .mimeTypes) ?? [],
                createdAfter: try date(.createdAfter), createdBefore: try date(.createdBefore),
                collapseNearDuplicates: try container.decodeIfPresent(Bool.self, forKey: .collapseNearDuplicates) ?? false)
        }
    }

    struct Input: JSONInput {
        static let fields: Set<String> = ["query", "mode", "limit", "cursor", "filters"]
        let query: String
        let mode: String?
        let limit: Int?
        let cursor: String?
        let filters: FiltersInput?

        func validate() throws(APIError) {
            if let mode, SearchMode(rawValue: mode) == nil { throw APIError.validation("mode", "must be hybrid, keyword or semantic") }
            if let limit, !(1...100).contains(limit) { throw APIError.validation("limit", "must be from 1 to 100") }
            if let unknown = filters?.keys.sorted().first(where: { !FiltersInput.fields.contains($0) }) {
                throw APIError.validation("filters.\(unknown)", "unknown filter; allowed: \(FiltersInput.fields.sorted().joined(separator: ", "))")
            }
            if let filters = filters?.filters, filters.documentIDs.count > 1000 || filters.tags.count > 50 || filters.mimeTypes.count > 50 {
                throw APIError.validation("filters", "at most 1000 document ids, 50 tags and 50 MIME types")
            }
        }
    }

    struct Body: Encodable, Sendable {
        let query: String
        let mode: String
        let results: [SearchResult]
        let nextCursor: String?
        enum CodingKeys: String, CodingKey { case query, mode, results, nextCursor = "next_cursor" }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(query, forKey: .query)
            try container.encode(mode, forKey: .mode)
            try container.encode(results, forKey: .results)
            try container.encode(nextCursor, forKey: .nextCursor)
        }
    }

    @Sendable func search(_ request: Request, context: APIRequestContext) async throws -> OK<Body> {
        let access = try context.require(.search)
        guard let service = services.search else { throw APIError.unavailable("search is not available on this server") }
        let input = try await request.decodeInput(Input.self, context: context)
        let mode = input.mode.flatMap(SearchMode.init(rawValue:)) ?? (service.hasSemanticLeg ? .hybrid : .keyword)
        if mode != .keyword && !service.hasSemanticLeg {
            throw APIError.validation("mode", "this server has no embedding model (INTELLIDOCS_MODEL_DIR); use keyword")
        }
        try await services.database.inTransaction { connection in
            try await services.quotas.takeSearch(orgID: access.orgID, on: connection)
        }
        let started = ContinuousClock.now
        let response: SearchResponse
        do {
            response = try await service.search(
                SearchRequest(query: input.query, mode: mode, limit: input.limit ?? 10, cursor: input.cursor, filters: input.filters?.filters ?? SearchFilters()),
                orgID: access.orgID)
        } catch let error as SearchError {
            throw APIError.validation(error.field, error.message)
        }
        let latency = Int((ContinuousClock.now - started) / .milliseconds(1))
        try await services.database.withConnection { connection in
            try await AnalyticsRepository(logger: services.logger).logSearch(
                orgID: access.orgID, query: input.query, mode: mode.rawValue, results: response.results.count, latencyMs: latency, on: connection)
        }
        return OK(Body(query: input.query, mode: mode.rawValue, results: response.results, nextCursor: response.nextCursor))
    }
}
