import Metrics

/// The metrics every stage worker exports (names are a contract with deploy/monitoring's dashboard):
/// - `intellidocs_jobs_total{stage,outcome}`: outcome `succeeded`, `retried` (sent to a retry queue),
///   `failed` (document failed: permanent error or attempts exhausted), `dead_lettered` (parked, including
///   undecodable messages);
/// - `intellidocs_job_duration_seconds{stage}`: from the start of a job's batch to its commit;
/// - `intellidocs_jobs_in_flight{stage}`: jobs taken from the queue and not yet settled;
/// - `intellidocs_items_produced_total{stage,kind}`: pages, chunks, vectors written.
struct StageMetrics: Sendable {
    let stage: String
    let succeeded: Counter
    let retried: Counter
    let failed: Counter
    let deadLettered: Counter
    let duration: Metrics.Timer
    let inFlight: Meter

    init(stage: String) {
        self.stage = stage
        func jobs(_ outcome: String) -> Counter {
            Counter(label: "intellidocs_jobs_total", dimensions: [("stage", stage), ("outcome", outcome)])
        }
        succeeded = jobs("succeeded")
        retried = jobs("retried")
        failed = jobs("failed")
        deadLettered = jobs("dead_lettered")
        duration = Metrics.Timer(label: "intellidocs_job_duration_seconds", dimensions: [("stage", stage)], preferredDisplayUnit: .seconds)
        inFlight = Meter(label: "intellidocs_jobs_in_flight", dimensions: [("stage", stage)])
    }

    func produced(kind: String, count: Int) {
        guard count > 0 else { return }
        Counter(label: "intellidocs_items_produced_total", dimensions: [("stage", stage), ("kind", kind)]).increment(by: count)
    }
}
