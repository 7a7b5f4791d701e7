import Foundation
public import Pipeline
public import PostgresNIO
import Storage

/// Index: the last stage. Makes a document's chunks searchable; the runtime then marks the document
/// `succeeded` in the same transaction.
public struct IndexStage: Stage {
    public let name = "index"
    public init() {}

    public struct Output: Sendable { let orgID: UUID }

    public func prepare(_ jobs: [Job], context: StageContext) async -> [Result<Output, StageFailure>] {
        jobs.map { .success(Output(orgID: $0.orgID)) }
    }

    public func write(_ results: [(job: Job, output: Output)], on connection: PostgresConnection, context: StageContext) async throws {
        let content = ContentRepository(logger: context.logger)
        for (orgID, items) in Dictionary(grouping: results, by: \.output.orgID) {
            try await content.indexChunks(documentIDs: items.map(\.job.documentID), orgID: orgID, on: connection)
        }
    }
}
