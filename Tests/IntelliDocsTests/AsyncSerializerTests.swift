import Testing

@testable import Search

/// `AsyncSerializer` (the vector index's refresh lock) runs one closure at a time even when the closures
/// suspend, and runs every one of them.
@Suite struct AsyncSerializerTests {
    actor Tally {
        var running = 0
        var most = 0
        var done = 0
        func enter() {
            running += 1
            most = max(most, running)
        }
        func leave() {
            running -= 1
            done += 1
        }
    }

    @Test func closuresThatSuspendStillRunOneAtATime() async throws {
        let serializer = AsyncSerializer()
        let tally = Tally()
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<12 {
                group.addTask {
                    try await serializer.run {
                        await tally.enter()
                        try await Task.sleep(for: .milliseconds(5))
                        await tally.leave()
                        return index
                    }
                }
            }
            var seen = Set<Int>()
            for try await index in group { seen.insert(index) }
            #expect(seen == Set(0..<12))
        }
        #expect(await tally.most == 1)
        #expect(await tally.done == 12)
        // A closure that throws lets the next one run.
        await #expect(throws: CancellationError.self) { try await serializer.run { throw CancellationError() } }
        #expect(try await serializer.run { 7 } == 7)
    }
}
