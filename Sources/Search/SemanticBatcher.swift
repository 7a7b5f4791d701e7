import Dispatch
import Embedding
import Foundation
import Metrics
import Synchronization

/// The semantic leg's two batched steps for concurrent searches: embedding the queries, then scanning the
/// organisation's vectors with them.
///
/// - **Embedding**: while a forward pass runs, new queries wait and go into the next pass as one batch.
///   Many small matrix products become a few larger ones, which the BLAS runs far more efficiently (per
///   core, on this machine: 165 queries/s one at a time, 314 in fours, 371 in eights, 392 in sixteens;
///   `intellidocs bench embed --batch N --threads 1`). Passes run on dispatch threads: a forward pass
///   blocks its thread for milliseconds, which the cooperative pool must not lend. The embedder splits
///   each pass over the cores, so one pass runs at a time. Measured on SciFact (hybrid, 16 clients)
///   against two one-core passes at once: p99 59–66 ms instead of 67–69 at about 5% fewer queries per
///   second; one client at a time, p50 6.3 ms instead of 8.8; 200k chunks, p99 67 instead of 78.
/// - **Scanning**: one pass over an organisation's matrix serves every waiting query of that organisation
///   (`VectorScoring`'s batched products), so a batch costs little more than one query.
///   An embedding pass hands its whole batch to the scan queue at once, so queries embedded together are
///   scanned together: handed over one by one, the first started a scan alone and the rest waited for
///   the next, two matrix passes per batch.
///
/// `PassQueue` decides when passes start; a lone query goes through both steps at once.
final class SemanticBatcher: Sendable {
    struct Request: Sendable {
        let query: String
        let orgID: UUID
        let limit: Int
        let allowed: Set<UUID>?
        let versions: IndexVersions?
        var vector: [Float] = []
        let continuation: CheckedContinuation<Result<[ChunkHit], any Error>, Never>

        func finish(_ result: Result<[ChunkHit], any Error>) { continuation.resume(returning: result) }
    }

    private let embedding: Mutex<PassQueue<Request>>
    private let scanning: Mutex<PassQueue<Request>>
    private let embedder: SentenceEmbedder
    private let index: VectorIndex
    private let queue = DispatchQueue(label: "intellidocs.search.embed", qos: .userInitiated, attributes: .concurrent)
    private let maxBatch: Int
    private let metrics = PassMetrics()

    init(embedder: SentenceEmbedder, index: VectorIndex, maxPasses: Int = ProcessInfo.processInfo.activeProcessorCount, maxBatch: Int = 32) {
        self.embedder = embedder
        self.index = index
        self.maxBatch = max(1, maxBatch)
        // The embedder splits a small pass over its threads (`SentenceEmbedder.splitPassTokens`), so one
        // pass at a time keeps the cores busy; a second would only take turns with the first.
        embedding = Mutex(PassQueue(maxPasses: max(1, maxPasses / embedder.threads), maxBatch: maxBatch))
        scanning = Mutex(PassQueue(maxPasses: maxPasses, maxBatch: maxBatch))
    }

    /// The `limit` chunks nearest to the query's embedding, best first (only documents in `allowed`, when
    /// given). `versions`: the organisation's index versions, when the search already read them.
    func nearest(to query: String, orgID: UUID, limit: Int, allowed: Set<UUID>?, versions: IndexVersions?) async throws -> [ChunkHit] {
        let result = await withCheckedContinuation { continuation in
            let request = Request(query: query, orgID: orgID, limit: limit, allowed: allowed, versions: versions, continuation: continuation)
            if embedding.withLock({ $0.add(request) }) { queue.async { self.embedPasses() } }
        }
        return try result.get()
    }

    /// Embeds batches until `PassQueue` ends this pass, handing each batch to the scan queue in one step.
    private func embedPasses() {
        while true {
            var batch = embedding.withLock { $0.nextBatch() }
            if batch.isEmpty { return }
            let started = ContinuousClock.now
            let vectors = embedder.embed(batch.map(\.query), batchSize: maxBatch)
            metrics.embedding.record(queries: batch.count, since: started)
            var embedded: [Request] = []
            for position in batch.indices {
                guard position < vectors.count, vectors[position].count == index.dimension else {
                    batch[position].finish(
                        .failure(SearchError(field: "query", message: "the query could not be embedded; try a shorter or plainer query")))
                    continue
                }
                batch[position].vector = vectors[position]
                embedded.append(batch[position])
            }
            if !embedded.isEmpty, scanning.withLock({ $0.add(contentsOf: embedded) }) { Task { await self.scanPasses() } }
        }
    }

    /// Scans until `PassQueue` ends this pass: one matrix pass per organisation in each batch.
    private func scanPasses() async {
        while true {
            let batch = scanning.withLock { $0.nextBatch() }
            if batch.isEmpty { return }
            for (orgID, requests) in Dictionary(grouping: batch, by: \.orgID) {
                let readings = requests.compactMap(\.versions)
                do {
                    let started = ContinuousClock.now
                    defer { metrics.scanning.record(queries: requests.count, since: started) }
                    let hits = try await index.nearest(
                        to: requests.map(\.vector), orgID: orgID, limits: requests.map(\.limit), allowed: requests.map(\.allowed),
                        versions: readings.count == requests.count ? IndexVersions.latest(readings) : nil)
                    for (request, found) in zip(requests, hits) { request.finish(.success(found)) }
                } catch {
                    for request in requests { request.finish(.failure(error)) }
                }
            }
        }
    }
}

/// How the batching works out, per step: queries per pass (`intellidocs_search_pass_queries`) and the
/// pass's wall time (`intellidocs_search_pass_seconds`), labelled `step="embed"` or `step="scan"`. Passes
/// of one or two queries under load mean the batching is not paying; long passes are what searches wait for.
private struct PassMetrics: Sendable {
    struct Step: Sendable {
        let queries: Recorder
        let seconds: Metrics.Timer
        init(_ step: String) {
            queries = Recorder(label: "intellidocs_search_pass_queries", dimensions: [("step", step)])
            seconds = Metrics.Timer(label: "intellidocs_search_pass_seconds", dimensions: [("step", step)])
        }
        func record(queries count: Int, since start: ContinuousClock.Instant) {
            queries.record(count)
            seconds.record(duration: ContinuousClock.now - start)
        }
    }
    let embedding = Step("embed")
    let scanning = Step("scan")
}
