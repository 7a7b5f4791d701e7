import Foundation
import Synchronization
import Testing

@testable import Embedding

/// The helper threads of split passes (`WorkerTeam`): every part runs exactly once and `run` returns only
/// after all have finished, whether the helpers were polling, asleep or slower than the caller; a second
/// caller at the same time is served too; the helpers end with the team.
@Suite struct WorkerTeamTests {
    /// Counts calls per part; `run`'s promise is checked after every run.
    final class Tally: Sendable {
        private let storage: Mutex<[Int]>
        init(parts: Int) { storage = Mutex([Int](repeating: 0, count: parts)) }
        func hit(_ part: Int) { storage.withLock { $0[part] += 1 } }
        var counts: [Int] { storage.withLock { $0 } }
        func all(equal value: Int, parts: Int) -> Bool { counts.prefix(parts).allSatisfy { $0 == value } }
    }

    @Test(arguments: [1, 3])
    func everyPartRunsOnceAndRunWaitsForAll(helpers: Int) {
        let team = WorkerTeam(helpers: helpers)
        let tally = Tally(parts: 13)
        var runs = [Int](repeating: 0, count: 14)
        var mismatches = 0
        for round in 0..<3_000 {
            let parts = [2, 3, 6, 13][round % 4]
            // Now and then slow parts (the caller then sleeps waiting for the last one), and now and then a
            // pause long enough for the helpers to fall asleep between runs.
            let slow = round % 97 == 0
            if round % 211 == 0 { usleep(2_000) }
            team.run(parts: parts) { part in
                if slow { usleep(300) }
                tally.hit(part)
            }
            runs[parts] += 1
            // Parts 0..<parts have run once more; parts beyond were never handed out.
            let expected = (0..<13).map { part in [2, 3, 6, 13].filter { $0 > part }.reduce(0) { $0 + runs[$1] } }
            if tally.counts != expected { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    @Test func concurrentCallersAreAllServed() {
        let team = WorkerTeam(helpers: 1)
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<500 {
                let tally = Tally(parts: 6)
                team.run(parts: 6) { tally.hit($0) }
                if !tally.all(equal: 1, parts: 6) { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }

    #if os(Linux)
        /// Threads of this process named as `team`'s helpers.
        static func helperThreads(of number: Int) -> Int {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            return tasks.filter { task in
                let name = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
                return name.hasPrefix("embed-t\(number)-")
            }.count
        }

        @Test func helpersEndWithTheTeam() async throws {
            var team: WorkerTeam? = WorkerTeam(helpers: 2)
            let number = try #require(team?.number)
            team?.run(parts: 4) { _ in }
            // A helper names itself once it runs.
            var during = 0
            for _ in 0..<200 where during < 2 {
                during = Self.helperThreads(of: number)
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(during == 2)
            team = nil
            var after = during
            for _ in 0..<200 where after > 0 {
                try await Task.sleep(for: .milliseconds(10))
                after = Self.helperThreads(of: number)
            }
            #expect(after == 0)
        }
    #endif
}
