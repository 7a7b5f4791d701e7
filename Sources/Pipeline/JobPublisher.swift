public import Broker
import Foundation

/// Publishes job envelopes to a stage's queues, persistent and confirmed by the broker.
public struct JobPublisher: Sendable {
    public let broker: BrokerConnection

    public init(broker: BrokerConnection) { self.broker = broker }

    /// Publishes `job` to `queue` and returns once the broker confirmed it.
    public func publish(_ job: Job, to queue: String, headers: AMQPTable = [:]) async throws(BrokerError) {
        var headers = headers
        headers["traceparent"] = .string(job.traceparent)
        try await broker.publish(
            routingKey: queue, body: job.encoded(), headers: headers, messageID: job.jobID.uuidString.lowercased())
    }

    /// Publishes many jobs with their confirms pipelined; returns the indices that failed.
    public func publish(_ jobs: [Job], to queue: String) async -> [Int: BrokerError] {
        await withTaskGroup(of: (Int, BrokerError?).self) { group in
            for (index, job) in jobs.enumerated() {
                group.addTask {
                    do throws(BrokerError) {
                        try await publish(job, to: queue)
                        return (index, nil)
                    } catch {
                        return (index, error)
                    }
                }
            }
            var failures: [Int: BrokerError] = [:]
            for await (index, error) in group {
                if let error { failures[index] = error }
            }
            return failures
        }
    }
}

/// Headers a dead letter carries, so a person listing the parking lot sees why each job is there.
public enum DeadLetterHeader {
    public static let reason = "x-intellidocs-reason"
    public static let stage = "x-intellidocs-stage"
    public static let kind = "x-intellidocs-failure"
    public static let failedAt = "x-intellidocs-failed-at"

    /// The headers of a job dead-lettered now by `stage` for `reason` (`kind`: transient, permanent, malformed).
    static func table(reason: String, stage: String, kind: String) -> AMQPTable {
        [
            Self.reason: .string(reason),
            Self.stage: .string(stage),
            Self.kind: .string(kind),
            Self.failedAt: .string(ISO8601DateFormatter().string(from: Date())),
        ]
    }
}
