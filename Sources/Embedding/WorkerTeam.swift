import Dispatch
import Foundation
import Synchronization

/// Helper threads that run the parts of a split pass (`BertEncoder.embed` with `parts` > 1) together
/// with the calling thread, and stay awake between its steps.
///
/// A split pass of a few search queries is two dozen steps of a few hundred microseconds each, every one
/// ending in a join. `DispatchQueue.concurrentPerform` hands each step to its worker threads afresh, and
/// waking them costs a good part of a step on this VM: six parts of 37 µs each took 170 µs on two cores
/// (ideal 115); with this team, 116. Between steps a helper polls for `spin`, yielding its core at every
/// poll (`sched_yield`), so the next step finds it awake while any other runnable thread (PostgreSQL, the
/// event loops) still gets the core at once; then it sleeps.
///
/// Measured (two cores): `intellidocs bench embed --per-batch --threads 2` on the SciFact queries, one
/// query per pass 375 → 525–564 queries/s, eight per pass 665–736 → 817–832; SciFact hybrid search with
/// 16 clients 457–469 → 512–546 searches/s, p99 48–50 → 44–47 ms. Polling with `pause` instead of
/// yielding gained alone but little under load: the polls then kept the other work off the core.
///
/// One run at a time: a second caller while a run is in progress (two split passes at once) gets
/// `concurrentPerform` instead, which is correct, only slower. The helpers end with the team.
final class WorkerTeam: Sendable {
    private let state: TeamState
    /// Threads that work besides the caller.
    let helpers: Int
    /// This team's number in the process; its helpers are named `embed-tN-1`, `embed-tN-2`, … (N this number).
    let number: Int

    private static let teams = Atomic<Int>(0)

    /// - Parameters:
    ///   - helpers: threads to start besides the caller (none: every run is the caller's alone).
    ///   - spin: how long a helper (and a caller waiting for the helpers) polls before it sleeps; 30, 60
    ///     and 100 µs measured alike under load.
    init(helpers: Int, spin: Duration = .microseconds(30)) {
        self.helpers = max(0, helpers)
        let nanoseconds = spin.components.seconds * 1_000_000_000 + spin.components.attoseconds / 1_000_000_000
        state = TeamState(spinNanoseconds: UInt64(max(0, nanoseconds)))
        number = Self.teams.add(1, ordering: .relaxed).newValue
        for index in 0..<self.helpers {
            let state = self.state
            let name = "embed-t\(number)-\(index + 1)"
            let thread = Thread {
                #if os(Linux)
                    // The name top, perf and the tests show (Foundation's `Thread.name` does not reach it here).
                    try? name.write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
                #endif
                state.helperLoop()
            }
            thread.start()
        }
    }

    deinit {
        state.stop()
    }

    /// Runs `body(0)` … `body(parts − 1)` on the caller and the helpers, each part once, and returns when
    /// all have finished.
    func run(parts: Int, _ body: (Int) -> Void) {
        guard parts > 1, helpers > 0 else {
            for part in 0..<max(0, parts) { body(part) }
            return
        }
        guard state.occupy() else {
            // Another split pass is running on the helpers; Dispatch's threads serve this one.
            Self.onDispatch(parts: parts, body)
            return
        }
        withoutActuallyEscaping(body) { body in
            state.run(parts: parts, body)
        }
    }

    /// `run` without a team: `DispatchQueue.concurrentPerform`, which also runs the parts one after another
    /// on the caller when no other thread is free.
    static func onDispatch(parts: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendableBody(body)
            DispatchQueue.concurrentPerform(iterations: parts) { shared.body($0) }
        }
    }
}

/// A closure handed to Dispatch's threads for one `concurrentPerform`, which returns only after every
/// call has finished.
private struct UncheckedSendableBody: @unchecked Sendable {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}

/// The shared state of a `WorkerTeam`: the current job and the counters its threads coordinate through.
///
/// The job (`body`, `parts`) is written only by the one running caller, and only while no helper can read
/// it: a helper reads it between raising `inside` and lowering it again, and only when it found `open`
/// set after raising `inside`; the caller clears `open` and waits for `inside` to reach zero before it
/// lets go of the job. Both sides use sequentially consistent operations for that handshake, so a helper
/// either sees the job closed or is counted by the caller.
private final class TeamState: @unchecked Sendable {
    // @unchecked Sendable: `body` and `parts` follow the handshake above; everything else is atomic or
    // under a condition's lock.
    private var body: ((Int) -> Void)?
    private var parts = 0

    private let occupied = Atomic<Bool>(false)
    private let open = Atomic<Bool>(false)
    private let inside = Atomic<Int>(0)
    private let generation = Atomic<Int>(0)
    private let nextPart = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)

    /// Helpers asleep, and the condition they sleep on.
    private let sleepers = Atomic<Int>(0)
    private let wake = NSCondition()
    /// Whether the caller sleeps waiting for the last part, and the condition it sleeps on.
    private let callerWaiting = Atomic<Bool>(false)
    private let done = NSCondition()

    private let spinNanoseconds: UInt64

    init(spinNanoseconds: UInt64) {
        self.spinNanoseconds = spinNanoseconds
    }

    /// Takes the team for one run; false when another caller has it.
    func occupy() -> Bool {
        occupied.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    }

    /// One run (the caller has `occupy`-ed the team); lets the team go when it returns.
    func run(parts count: Int, _ job: @escaping (Int) -> Void) {
        body = job
        parts = count
        nextPart.store(0, ordering: .relaxed)
        finished.store(0, ordering: .relaxed)
        open.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            wake.lock()
            wake.broadcast()
            wake.unlock()
        }

        takeParts(job, count: count)
        if finished.load(ordering: .acquiring) < count {
            let started = DispatchTime.now().uptimeNanoseconds
            while finished.load(ordering: .acquiring) < count {
                sched_yield()
                if DispatchTime.now().uptimeNanoseconds &- started > spinNanoseconds {
                    // A helper holds the last part and may have lost its core: sleep, so this core is free.
                    done.lock()
                    callerWaiting.store(true, ordering: .sequentiallyConsistent)
                    while finished.load(ordering: .sequentiallyConsistent) < count { done.wait() }
                    callerWaiting.store(false, ordering: .relaxed)
                    done.unlock()
                }
            }
        }

        // Close the job and wait for helpers still between `inside` and leaving (they take no part now).
        open.store(false, ordering: .sequentiallyConsistent)
        while inside.load(ordering: .sequentiallyConsistent) != 0 {
            sched_yield()
        }
        body = nil
        occupied.store(false, ordering: .releasing)
    }

    /// Takes parts until none is left, counting each finished one; the thread finishing the last part
    /// wakes a caller that went to sleep waiting for it.
    private func takeParts(_ job: (Int) -> Void, count: Int) {
        while true {
            let part = nextPart.add(1, ordering: .relaxed).oldValue
            if part >= count { return }
            job(part)
            if finished.add(1, ordering: .acquiringAndReleasing).newValue == count,
                callerWaiting.load(ordering: .sequentiallyConsistent)
            {
                done.lock()
                done.signal()
                done.unlock()
            }
        }
    }

    /// A helper thread: waits for each new run (polling for `spinNanoseconds`, then asleep), takes parts
    /// of it, and ends when the team is stopped.
    func helperLoop() {
        var seen = generation.load(ordering: .acquiring)
        while true {
            if generation.load(ordering: .acquiring) == seen {
                let started = DispatchTime.now().uptimeNanoseconds
                while generation.load(ordering: .acquiring) == seen {
                    sched_yield()
                    if DispatchTime.now().uptimeNanoseconds &- started > spinNanoseconds { break }
                }
                if generation.load(ordering: .acquiring) == seen {
                    wake.lock()
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    wake.unlock()
                }
            }
            if stopping.load(ordering: .acquiring) { return }
            seen = generation.load(ordering: .acquiring)
            inside.add(1, ordering: .sequentiallyConsistent)
            if open.load(ordering: .sequentiallyConsistent) { helpWithJob() }
            inside.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    /// The helper's share of the open job; its own function, so the helper holds `body` only inside it.
    @inline(never)
    private func helpWithJob() {
        guard let job = body else { return }
        takeParts(job, count: parts)
    }

    /// Ends the helpers (the team is going away; no run is in progress).
    func stop() {
        stopping.store(true, ordering: .releasing)
        generation.add(1, ordering: .sequentiallyConsistent)
        wake.lock()
        wake.broadcast()
        wake.unlock()
    }
}
