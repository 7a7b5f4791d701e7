import Broker

/// Deliveries waiting for a batch processor. A processor takes everything that is waiting (up to a
/// batch size) as soon as at least one delivery is there, so batches grow by themselves when the queue is
/// busy and stay small when it is quiet; the prefetch window bounds how much can wait.
actor DeliveryBuffer {
    private var waiting: [IncomingMessage] = []
    private var takers: [CheckedContinuation<[IncomingMessage], Never>] = []
    private var finished = false
    private let batchSize: Int

    init(batchSize: Int) { self.batchSize = batchSize }

    func append(_ message: IncomingMessage) {
        waiting.append(message)
        if !takers.isEmpty {
            takers.removeFirst().resume(returning: takeBatch())
        }
    }

    /// No more deliveries will come: waiting takers get what is left, then empty batches.
    func finish() {
        finished = true
        while !takers.isEmpty {
            takers.removeFirst().resume(returning: takeBatch())
        }
    }

    /// The next batch, or an empty one when the buffer is finished and drained.
    func next() async -> [IncomingMessage] {
        if !waiting.isEmpty || finished { return takeBatch() }
        return await withCheckedContinuation { takers.append($0) }
    }

    private func takeBatch() -> [IncomingMessage] {
        let count = min(batchSize, waiting.count)
        let batch = Array(waiting.prefix(count))
        waiting.removeFirst(count)
        return batch
    }
}
