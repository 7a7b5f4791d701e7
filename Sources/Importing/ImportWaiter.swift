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
/// Each poll asks only about the documents still in progress: a finished document's status and stage
/// runs no longer change, so they are read once, when it finishes, and carried forward. The two progress
/// statements cost PostgreSQL about 5 µs per document asked about (~55 ms for all 5,183 of SciFact), CPU
/// the stages compete for, so polls also keep to about 5% of the wait: the pause between them is
/// `pollInterval`, or 19 times what the last poll took when that is longer.
public struct ImportWaiter: Sendable {
    let database: Database
    public init(database: Database) { self.database = database }

    public func wait(
        for documentIDs: [UUID], orgID: UUID, pollInterval: Duration = .milliseconds(250),
        timeout: Duration? = nil, progress report: @Sendable (WaitProgress) -> Void = { _ in }
    ) async throws -> WaitProgress {
        let documents = DocumentRepository(database)
        let imports = ImportRepository(database)
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + $0 }
        var pending = Set(documentIDs)
        var finished = WaitProgress(total: pending.count)
        while true {
            let pollStarted = clock.now
            var state = WaitProgress(total: finished.total)
            // Large imports are asked about in slices, so no single statement carries an unbounded array.
            let asked = Array(pending)
            for start in stride(from: 0, to: asked.count, by: 5000) {
                let slice = Array(asked[start..<min(start + 5000, asked.count)])
                let statuses = try await documents.finishedStatuses(slice, orgID: orgID)
                let done = Array(statuses.keys)
                for status in statuses.values {
                    if status == .succeeded { finished.succeeded += 1 } else { finished.failed += 1 }
                }
                // Stage runs after the statuses: a document read as finished has all of its runs by now.
                if !done.isEmpty {
                    for (stage, count) in try await imports.stageProgress(done, orgID: orgID) { finished.stages[stage, default: 0] += count }
                    pending.subtract(done)
                }
                let open = slice.filter { statuses[$0] == nil }
                if !open.isEmpty {
                    for (stage, count) in try await imports.stageProgress(open, orgID: orgID) { state.stages[stage, default: 0] += count }
                }
            }
            state.succeeded = finished.succeeded
            state.failed = finished.failed
            for (stage, count) in finished.stages { state.stages[stage, default: 0] += count }
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
