import Foundation
import Hummingbird
import Storage

/// `GET /v1/orgs/{org}/analytics/usage|pipeline|search`: an organisation's usage over time, its pipeline's
/// work per stage, and what its people search for. Windows are `from` (inclusive) to `to` (exclusive),
/// ISO 8601; the defaults are the last 30 days (usage, search) and the last 24 hours (pipeline).
struct AnalyticsController {
    let services: APIServices

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.get("analytics/usage", use: usage)
        router.get("analytics/pipeline", use: pipeline)
        router.get("analytics/search", use: search)
    }

    struct UsageBody: Encodable, Sendable {
        struct Point: Encodable, Sendable {
            let start: Date
            let documents, pages, chunks, searches: Int
            let storageBytes: Int
            enum CodingKeys: String, CodingKey { case start, documents, pages, chunks, searches, storageBytes = "storage_bytes" }
        }
        let from: Date
        let to: Date
        let bucket: String
        let series: [Point]
    }

    struct PipelineBody: Encodable, Sendable {
        struct Stage: Encodable, Sendable {
            let stage: String
            let processed, failed, retried, deadLettered: Int
            let p50Ms: Double?
            let p95Ms: Double?
            let throughputPerMinute: Double
            enum CodingKeys: String, CodingKey {
                case stage, processed, failed, retried, deadLettered = "dead_lettered", p50Ms = "p50_ms", p95Ms = "p95_ms"
                case throughputPerMinute = "throughput_per_minute"
            }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(stage, forKey: .stage)
                try container.encode(processed, forKey: .processed)
                try container.encode(failed, forKey: .failed)
                try container.encode(retried, forKey: .retried)
                try container.encode(deadLettered, forKey: .deadLettered)
                try container.encode(p50Ms, forKey: .p50Ms)
                try container.encode(p95Ms, forKey: .p95Ms)
                try container.encode(throughputPerMinute, forKey: .throughputPerMinute)
            }
        }
        let from: Date
        let to: Date
        let stages: [Stage]
    }

    struct SearchBody: Encodable, Sendable {
        struct Count: Encodable, Sendable {
            let query: String
            let count: Int
        }
        let from: Date
        let to: Date
        let searches: Int
        let topQueries: [Count]
        let noResults: [Count]
        enum CodingKeys: String, CodingKey { case from, to, searches, topQueries = "top_queries", noResults = "no_results" }
    }

    @Sendable func usage(_ request: Request, context: APIRequestContext) async throws -> OK<UsageBody> {
        let access = try context.require(.analyticsRead)
        let query = request.uri.queryParameters
        let bucketName = query["bucket"].map(String.init) ?? "day"
        guard let bucket = AnalyticsBucket(rawValue: bucketName) else { throw APIError.validation("bucket", "must be hour, day or month") }
        let (from, to) = try Self.window(query["from"].map(String.init), query["to"].map(String.init), defaultSeconds: 30 * 86400)
        let seconds: Double = switch bucket {
        case .hour: 3600
        case .day: 86400
        case .month: 28 * 86400
        }
        guard to.timeIntervalSince(from) / seconds <= 5000 else {
            throw APIError.validation("bucket", "the window holds more than 5000 \(bucket.rawValue)s; choose a larger bucket or a shorter window")
        }
        let points = try await services.database.withConnection { connection in
            try await AnalyticsRepository(logger: services.logger).usage(orgID: access.orgID, from: from, to: to, bucket: bucket, on: connection)
        }
        return OK(UsageBody(from: from, to: to, bucket: bucket.rawValue, series: points.map {
            UsageBody.Point(start: $0.start, documents: $0.documents, pages: $0.pages, chunks: $0.chunks, searches: $0.searches, storageBytes: $0.storageBytes)
        }))
    }

    @Sendable func pipeline(_ request: Request, context: APIRequestContext) async throws -> OK<PipelineBody> {
        let access = try context.require(.analyticsRead)
        let query = request.uri.queryParameters
        let (from, to) = try Self.window(query["from"].map(String.init), query["to"].map(String.init), defaultSeconds: 86400)
        let stages = try await services.database.withConnection { connection in
            try await AnalyticsRepository(logger: services.logger).pipeline(orgID: access.orgID, from: from, to: to, on: connection)
        }
        let order = services.pipeline.stages.map(\.name)
        let sorted = stages.sorted { (order.firstIndex(of: $0.stage) ?? .max) < (order.firstIndex(of: $1.stage) ?? .max) }
        return OK(PipelineBody(from: from, to: to, stages: sorted.map {
            PipelineBody.Stage(
                stage: $0.stage, processed: $0.processed, failed: $0.failed, retried: $0.retried, deadLettered: $0.deadLettered,
                p50Ms: $0.p50Ms, p95Ms: $0.p95Ms, throughputPerMinute: $0.perMinute)
        }))
    }

    @Sendable func search(_ request: Request, context: APIRequestContext) async throws -> OK<SearchBody> {
        let access = try context.require(.analyticsRead)
        let query = request.uri.queryParameters
        let (from, to) = try Self.window(query["from"].map(String.init), query["to"].map(String.init), defaultSeconds: 30 * 86400)
        let limit = try DocumentsController.limit(query["limit"].map(String.init) ?? "20")
        let result = try await services.database.withConnection { connection in
            try await AnalyticsRepository(logger: services.logger).searches(orgID: access.orgID, from: from, to: to, limit: limit, on: connection)
        }
        return OK(SearchBody(
            from: from, to: to, searches: result.total,
            topQueries: result.top.map { SearchBody.Count(query: $0.query, count: $0.count) },
            noResults: result.noResults.map { SearchBody.Count(query: $0.query, count: $0.count) }))
    }

    /// `from`/`to` as ISO 8601 (default: the `defaultSeconds` before now), `from` before `to`, at most 2 years.
    static func window(_ fromText: String?, _ toText: String?, defaultSeconds: Double) throws(APIError) -> (Date, Date) {
        let formatter = ISO8601DateFormatter()
        func parse(_ text: String?, field: String) throws(APIError) -> Date? {
            guard let text else { return nil }
            guard let date = formatter.date(from: text) else { throw APIError.validation(field, "must be an ISO 8601 time such as 2026-11-01T00:00:00Z") }
            return date
        }
        let to = try parse(toText, field: "to") ?? Date()
        let from = try parse(fromText, field: "from") ?? to.addingTimeInterval(-defaultSeconds)
        guard from < to else { throw APIError.validation("from", "must be before to") }
        guard to.timeIntervalSince(from) <= 2 * 366 * 86400 else { throw APIError.validation("from", "the window is at most two years") }
        return (from, to)
    }
}
