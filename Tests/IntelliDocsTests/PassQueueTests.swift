import Testing

@testable import Search

/// When the search batchers start and stop passes (`PassQueue`): a lone item goes at once, a second pass
/// needs a batch worth running in parallel, and no item is ever left without a pass to take it.
@Suite struct PassQueueTests {
    @Test func aLoneItemStartsAPassAndSmallArrivalsWaitForIt() {
        var queue = PassQueue<Int>(maxPasses: 2, maxBatch: 32, minimumParallelBatch: 4)
        var started: Bool
        var result: [Int]
        started = queue.add(1)
        #expect(started)
        result = queue.nextBatch()
        #expect(result == [1])
        // While that pass runs, three more arrive: too few for a second pass.
        started = queue.add(2)
        #expect(!started)
        started = queue.add(3)
        #expect(!started)
        started = queue.add(4)
        #expect(!started)
        result = queue.nextBatch()
        #expect(result == [2, 3, 4])
        result = queue.nextBatch()
        #expect(result == [])
        #expect(queue.running == 0)
    }

    @Test func aSecondPassStartsForAFullBatchAndStopsWhenFewWait() {
        var queue = PassQueue<Int>(maxPasses: 2, maxBatch: 3, minimumParallelBatch: 4)
        var started: Bool
        var result: [Int]
        started = queue.add(0)
        #expect(started)
        result = queue.nextBatch()
        #expect(result == [0])
        started = queue.add(contentsOf: [1, 2, 3])
        #expect(!started)
        started = queue.add(4)
        #expect(started)  // four waiting: a second pass
        #expect(queue.running == 2)
        started = queue.add(5)
        #expect(!started)  // both passes busy
        result = queue.nextBatch()
        #expect(result == [1, 2, 3])  // second pass, at most maxBatch
        // Two wait and two passes run: the one asking stops, the other takes them.
        result = queue.nextBatch()
        #expect(result == [])
        #expect(queue.running == 1)
        result = queue.nextBatch()
        #expect(result == [4, 5])
        result = queue.nextBatch()
        #expect(result == [])
        #expect(queue.running == 0)
        #expect(queue.waiting.isEmpty)
    }

    @Test func everyItemIsTakenWhateverTheInterleaving() {
        // Two passes stepping in a fixed pseudo-random order while items arrive: every item comes out once.
        var queue = PassQueue<Int>(maxPasses: 2, maxBatch: 5, minimumParallelBatch: 3)
        var active = 0
        var taken: [Int] = []
        var seed: UInt64 = 42
        for item in 0..<2_000 {
            if queue.add(item) { active += 1 }
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            if active > 0, seed >> 62 == 0 {
                let batch = queue.nextBatch()
                if batch.isEmpty { active -= 1 } else { taken += batch }
            }
            #expect(active == queue.running)
        }
        while active > 0 {
            let batch = queue.nextBatch()
            if batch.isEmpty { active -= 1 } else { taken += batch }
        }
        #expect(taken == Array(0..<2_000))
        #expect(queue.waiting.isEmpty)
    }
}
