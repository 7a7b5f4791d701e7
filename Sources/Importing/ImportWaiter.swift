public import Foundation
public import Storage

/// Where the documents of an import are.
public struct WaitProgress: Sendable, Equatable {
    public var total = 0
    public var succeeded = 0
    public var failed = 0
    /// Documents whose stage run succeeded, per stage.
    public var stages: [String: Int] = [:]
    public var done: Bool { succeeded + failed >= total }

    public init(total: Int = 0, succeeded: Int = 0, failed: Int = 0, stages: [String: Int] = [:]) {
        self.total = total
        self.succeeded = succeeded
        self.failed = failed
        self.stages = stages
    }
}

/// `import --wait`: polls until every document of the import is `succeeded` or `failed`.
///
/// The pause between polls is `pollInterval`, or 19 times what the last poll took when that is longer,
/// so polling keeps to about 5% of the wait. The two progress statements grow with the import: for the
/// 5,183 documents of SciFact they took ~75 ms of PostgreSQL's CPU, and asking every 250 ms cost about a
/// third of a core while the stages were competing for the same two cores.
public struct ImportWaiter: Sendable {
    let database: Database
    public init(database: Database) { self.database = database }

    public func wait(
        for documentIDs: [UUID], orgID: UUID, pollInterval: Duration = .milliseconds(250),
        timeout: Duration? = nil, progress report: @Sendable (WaitProgress) -> Void = { _ in }
    ) async throws -> WaitProgress {
        let ids = Array(Set(documentIDs))
        let documents = DocumentRepository(database)
        let imports = ImportRepository(database)
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + $0 }
        while true {
            let pollStarted = clock.now
            var state = WaitProgress(total: ids.count)
            // Large imports are asked about in slices, so no single statement carries an unbounded array.
            for start in stride(from: 0, to: ids.count, by: 5000) {
                let slice = Array(ids[start..<min(start + 5000, ids.count)])
                let counts = try await documents.statusCounts(slice, orgID: orgID)
                state.succeeded += counts[.succeeded] ?? 0
                state.failed += counts[.failed] ?? 0
                for (stage, count) in try await imports.stageProgress(slice, orgID: orgID) { state.stages[stage, default: 0] += count }
            }
            report(state)
            if state.done { return state }
            if let deadline, clock.now >= deadline {
                throw ImportError(
                    message: "gave up waiting: \(state.total - state.succeeded - state.failed) of \(state.total) documents are still in progress; are workers running (`intellidocs run`)? See `intellidocs queues`")
            }
            try await Task.sleep(for: max(pollInterval, (clock.now - pollStarted) * 19))
        }
    }
}
