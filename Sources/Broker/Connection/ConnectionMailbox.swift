import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The only state shared between callers (any thread, any task) and the connection thread: the command
/// queue, the lifecycle phase and the status counters.
///
/// The connection thread sleeps in `poll(2)` on the AMQP socket and on `wakeupDescriptor`, a pipe this
/// mailbox writes one byte into when the first command of a batch arrives; so a command is picked up at
/// once instead of after a polling interval.
///
/// `@unchecked Sendable` is safe: every mutable stored property is read and written only while `lock` is
/// held, and the two file descriptors are immutable after `init` and closed only in `deinit`, when no
/// other reference (and so no concurrent user) exists.
final class ConnectionMailbox: @unchecked Sendable {
    enum Phase {
        /// Not connected yet (or the first connect failed): commands are rejected.
        case idle
        /// The connection thread runs (connected or reconnecting): commands are queued.
        case running
        /// `close()` happened: commands are rejected for good.
        case closed
    }

    enum StartDecision {
        case startThread
        case alreadyRunning
        case closed
    }

    private let lock = NSLock()
    private var phase = Phase.idle
    private var queue: [QueuedCommand] = []
    private var wakeupPending = false
    private var connected = false
    private var reconnects = 0
    private var lastConsumerID: UInt64 = 0
    private let commandTimeout: Duration

    /// Identifies the connection in `DeliveryIdentity`; the mailbox lives as long as its connection's thread.
    var id: ObjectIdentifier { ObjectIdentifier(self) }

    /// Read end of the wake-up pipe, polled by the connection thread.
    let wakeupDescriptor: Int32
    private let wakeupWriteDescriptor: Int32

    init(commandTimeout: Duration) {
        self.commandTimeout = commandTimeout
        var descriptors: [Int32] = [-1, -1]
        guard pipe(&descriptors) == 0 else {
            fatalError("cannot create the broker connection's wake-up pipe: \(String(cString: strerror(errno)))")
        }
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        wakeupDescriptor = descriptors[0]
        wakeupWriteDescriptor = descriptors[1]
    }

    deinit {
        close(wakeupDescriptor)
        close(wakeupWriteDescriptor)
    }

    // MARK: Callers

    /// Queues `command` for the connection thread, or rejects it at once when no thread is running.
    func submit(_ command: Command) {
        let rejection: BrokerError? = lock.withLock {
            switch phase {
            case .idle:
                return .closed("the broker connection is not open: call connect() first")
            case .closed:
                return .closed("the broker connection was closed")
            case .running:
                queue.append(QueuedCommand(command: command, deadline: .now + commandTimeout))
                if !wakeupPending {
                    wakeupPending = true
                    var byte: UInt8 = 1
                    // Cannot block (O_NONBLOCK) and cannot fill up (one byte per batch, drained by takeCommands).
                    _ = write(wakeupWriteDescriptor, &byte, 1)
                }
                return nil
            }
        }
        // Resumed outside the lock: a rejected consume's caller finishes its stream, whose onTermination
        // submits again, which would deadlock on the non-recursive lock.
        if let rejection {
            command.reject(with: rejection)
        }
    }

    func makeConsumerID() -> UInt64 {
        lock.withLock {
            lastConsumerID += 1
            return lastConsumerID
        }
    }

    var isConnected: Bool {
        lock.withLock { connected }
    }

    var reconnectCount: Int {
        lock.withLock { reconnects }
    }

    /// Moves `idle` to `running`; the caller that gets `.startThread` must start the connection thread.
    func start() -> StartDecision {
        lock.withLock {
            switch phase {
            case .idle:
                phase = .running
                return .startThread
            case .running:
                return .alreadyRunning
            case .closed:
                return .closed
            }
        }
    }

    /// Closes a mailbox whose thread never started (`close()` before `connect()`); false when a thread runs.
    func closeIfIdle() -> Bool {
        lock.withLock {
            switch phase {
            case .idle, .closed:
                phase = .closed
                return true
            case .running:
                return false
            }
        }
    }

    var phaseForDeinit: Phase {
        lock.withLock { phase }
    }

    // MARK: Connection thread

    /// Takes every queued command and consumes the wake-up byte.
    func takeCommands() -> [QueuedCommand] {
        lock.withLock {
            drainWakeup()
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
    }

    /// Back to `idle` after a failed first connect; returns commands that were queued meanwhile.
    func returnToIdle() -> [QueuedCommand] {
        lock.withLock {
            phase = .idle
            connected = false
            defer { queue.removeAll() }
            return queue
        }
    }

    /// Final state; returns commands that were queued and must be rejected.
    func markClosed() -> [QueuedCommand] {
        lock.withLock {
            drainWakeup()  // or the shutdown's poll(2) would keep waking up
            phase = .closed
            connected = false
            defer { queue.removeAll() }
            return queue
        }
    }

    /// Empties the wake-up pipe. Call with `lock` held.
    private func drainWakeup() {
        guard wakeupPending else {
            return
        }
        var buffer = [UInt8](repeating: 0, count: 16)
        while read(wakeupDescriptor, &buffer, buffer.count) > 0 {}
        wakeupPending = false
    }

    func setConnected(_ value: Bool) {
        lock.withLock { connected = value }
    }

    func recordReconnect() {
        lock.withLock {
            connected = true
            reconnects += 1
        }
    }
}
