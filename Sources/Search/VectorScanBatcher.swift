import Foundation
import Synchronization

/// Scans for concurrent semantic queries together: while scans run (at most one per core), new queries
/// wait and the next scan serves all of them with one pass over the organisation's matrix. At a few
/// hundred thousand chunks the scan is bound by memory bandwidth, not arithmetic, so a batch of queries
/// costs little more than one. A lone query is scanned at once.
final class VectorScanBatcher: Sendable {
    struct Request: Sendable {
        let vector: [Float]
        let orgID: UUID
        let limit: Int
        let allowed: Set<UUID>?
        let continuation: CheckedContinuation<Result<[ChunkHit], any Error>, Never>
    }

    private struct State {
        var waiting: [Request] = []
        var running = 0
    }

    private let state = Mutex(State())
    private let index: VectorIndex
    private let maxPasses: Int
    private let maxBatch: Int

    init(index: VectorIndex, maxPasses: Int = ProcessInfo.processInfo.activeProcessorCount, maxBatch: Int = 32) {
        self.index = index
        self.maxPasses = max(1, maxPasses)
        self.maxBatch = max(1, maxBatch)
    }

    func nearest(to vector: [Float], orgID: UUID, limit: Int, allowed: Set<UUID>?) async throws -> [ChunkHit] {
        let result = await withCheckedContinuation { continuation in
            let startPass = state.withLock { state in
                state.waiting.append(Request(vector: vector, orgID: orgID, limit: limit, allowed: allowed, continuation: continuation))
                guard state.running < maxPasses else { return false }
                state.running += 1
                return true
            }
            if startPass { Task { await self.drain() } }
        }
        return try result.get()
    }

    /// Serves waiting requests, one scan per organisation in each batch, until none wait.
    private func drain() async {
        while true {
            let batch = state.withLock { state in
                if state.waiting.isEmpty {
                    state.running -= 1
                    return [Request]()
                }
                let taken = Array(state.waiting.prefix(maxBatch))
                state.waiting.removeFirst(taken.count)
                return taken
            }
            if batch.isEmpty { return }
            for (orgID, requests) in Dictionary(grouping: batch, by: \.orgID) {
                do {
                    let hits = try await index.nearest(
                        to: requests.map(\.vector), orgID: orgID, limits: requests.map(\.limit), allowed: requests.map(\.allowed))
                    for (request, found) in zip(requests, hits) { request.continuation.resume(returning: .success(found)) }
                } catch {
                    for request in requests { request.continuation.resume(returning: .failure(error)) }
                }
            }
        }
    }
}
