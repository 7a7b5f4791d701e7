/// Where the connection thread sends the outcome of a command.
typealias Reply<Value: Sendable> = CheckedContinuation<Result<Value, BrokerError>, Never>

/// One request from a caller to the connection thread. Callers never touch rabbitmq-c themselves.
enum Command: Sendable {
    case publish(PublishRequest, Reply<Void>)
    case declareQueue(name: String, durable: Bool, arguments: AMQPTable, Reply<Void>)
    case queueInfo(name: String, Reply<QueueInfo?>)
    case deleteQueue(name: String, Reply<Void>)
    case purgeQueue(name: String, Reply<Int>)
    case get(queue: String, Reply<IncomingMessage?>)
    case consume(ConsumerRegistration, Reply<Void>)
    /// Sent by a consume stream's `onTermination`; nobody waits for it.
    case cancelConsumer(id: UInt64)
    case settle(DeliveryIdentity, Settlement, CheckedContinuation<Void, Never>)
    /// `nil` continuation: sent by `deinit` of a connection nobody closed.
    case close(CheckedContinuation<Void, Never>?)

    /// Answers the command without running it (connection closed, not started, or timed out).
    func reject(with error: BrokerError) {
        switch self {
        case .publish(_, let reply), .declareQueue(_, _, _, let reply), .deleteQueue(_, let reply),
            .consume(_, let reply):
            reply.resume(returning: .failure(error))
        case .queueInfo(_, let reply):
            reply.resume(returning: .failure(error))
        case .purgeQueue(_, let reply):
            reply.resume(returning: .failure(error))
        case .get(_, let reply):
            reply.resume(returning: .failure(error))
        case .cancelConsumer:
            break
        case .settle(_, _, let done):
            // Nothing to settle: an unacked delivery goes back to its queue when its channel goes away.
            done.resume()
        case .close(let done):
            done?.resume()
        }
    }
}

/// A command plus the moment after which it may no longer wait for a reconnect.
struct QueuedCommand: Sendable {
    let command: Command
    let deadline: ContinuousClock.Instant
}

struct PublishRequest: Sendable {
    var exchange: String
    var routingKey: String
    var body: [UInt8]
    var headers: AMQPTable
    var messageID: String?
    var contentType: String?
}

enum Settlement: Sendable {
    case ack
    case nack(requeue: Bool)
}

/// What the connection thread needs to (re)subscribe a consumer and feed its stream.
struct ConsumerRegistration: Sendable {
    let id: UInt64
    let queue: String
    let prefetch: UInt16
    let continuation: AsyncStream<IncomingMessage>.Continuation
}
