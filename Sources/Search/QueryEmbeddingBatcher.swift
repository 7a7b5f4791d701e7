import Dispatch
import Embedding
import Foundation
import Synchronization

/// Embeds concurrent search queries together. While forward passes run (at most one per core), new
/// queries wait and go into the next pass as one batch: many small matrix products become a few larger
/// ones, which the BLAS runs far more efficiently. A lone query is embedded at once, so nothing waits
/// when the service is quiet.
final class QueryEmbeddingBatcher: Sendable {
    private struct State {
        var waiting: [(query: String, continuation: CheckedContinuation<[Float], Never>)] = []
        var running = 0
    }

    private let state = Mutex(State())
    private let embedder: SentenceEmbedder
    private let queue = DispatchQueue(label: "intellidocs.search.embed", qos: .userInitiated, attributes: .concurrent)
    private let maxPasses: Int
    private let maxBatch: Int

    init(embedder: SentenceEmbedder, maxPasses: Int = ProcessInfo.processInfo.activeProcessorCount, maxBatch: Int = 32) {
        self.embedder = embedder
        self.maxPasses = max(1, maxPasses)
        self.maxBatch = max(1, maxBatch)
    }

    func embed(_ query: String) async -> [Float] {
        await withCheckedContinuation { continuation in
            let startPass = state.withLock { state in
                state.waiting.append((query, continuation))
                guard state.running < maxPasses else { return false }
                state.running += 1
                return true
            }
            if startPass { queue.async { self.drain() } }
        }
    }

    /// Runs passes until nothing waits (on a dispatch thread: a forward pass blocks its thread).
    private func drain() {
        while true {
            let batch = state.withLock { state in
                if state.waiting.isEmpty {
                    state.running -= 1
                    return [(query: String, continuation: CheckedContinuation<[Float], Never>)]()
                }
                let taken = Array(state.waiting.prefix(maxBatch))
                state.waiting.removeFirst(taken.count)
                return taken
            }
            if batch.isEmpty { return }
            let vectors = embedder.embed(batch.map(\.query), batchSize: maxBatch)
            for (index, item) in batch.enumerated() {
                item.continuation.resume(returning: index < vectors.count ? vectors[index] : [])
            }
        }
    }
}
