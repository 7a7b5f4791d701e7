public import Logging
public import PostgresNIO
public import Storage

/// The stage contract.
///
/// A stage turns a batch of jobs into results in two phases, so that the runtime can keep its promises:
///
/// 1. `prepare` reads what it needs (PostgreSQL, blob store) and computes. It must not write: the runtime
///    may call it again for the same document after a crash or a redelivery. Each job gets its own
///    `Result`, so one bad document never fails its neighbours.
/// 2. `write` stores the results of the jobs that prepared successfully, inside a transaction the runtime
///    owns, **replacing** any partial results of an earlier attempt. In the same transaction the runtime
///    marks the stage runs `succeeded`.
///
/// What the runtime guarantees in return: a job whose stage run already succeeded is not prepared again
/// (only its next job is re-published); the message is acked only after the commit and after the broker
/// confirmed the next stage's job; transient failures are retried with backoff; permanent failures and
/// exhausted attempts go to the stage's dead-letter queue with the reason, and the document is failed with it.
public protocol Stage: Sendable {
    associatedtype Output: Sendable
    /// The name used in pipeline definitions.
    var name: String { get }
    func prepare(_ jobs: [Job], context: StageContext) async -> [Result<Output, StageFailure>]
    func write(_ results: [(job: Job, output: Output)], on connection: PostgresConnection, context: StageContext) async throws
    /// What an output holds, for the `intellidocs_items_produced_total{stage,kind}` metric (e.g. pages).
    func produced(_ output: Output) -> (kind: String, count: Int)?
}

extension Stage {
    public func produced(_ output: Output) -> (kind: String, count: Int)? { nil }
}

/// What a stage can use while it works.
public struct StageContext: Sendable {
    public let database: Database
    public let logger: Logger
    public let definition: PipelineDefinition.StageDefinition

    public init(database: Database, logger: Logger, definition: PipelineDefinition.StageDefinition) {
        self.database = database
        self.logger = logger
        self.definition = definition
    }
}

/// Why a job failed, and whether trying again can help.
public struct StageFailure: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// A connection, timeout or lock problem: retried after the next delay.
        case transient
        /// The input itself is bad (corrupt file, limit exceeded): dead-lettered at once.
        case permanent
    }
    public let kind: Kind
    /// A sentence a person can act on; stored on the document and in the dead letter's headers.
    public let reason: String

    public static func transient(_ reason: String) -> StageFailure { StageFailure(kind: .transient, reason: reason) }
    public static func permanent(_ reason: String) -> StageFailure { StageFailure(kind: .permanent, reason: reason) }

    public var description: String { "\(kind.rawValue): \(reason)" }
}
