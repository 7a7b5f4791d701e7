import Foundation
public import Logging

/// One AMQP connection to RabbitMQ, owned by one dedicated thread.
///
/// rabbitmq-c is blocking and not thread-safe, so every operation here is a command handed to that
/// thread (see `ConnectionWorker`); async callers suspend on a continuation until it answers, and the
/// cooperative thread pool is never blocked.
///
/// Guarantees:
/// - `publish` returns only after the broker confirmed the message (publisher confirms). Concurrent
///   publishes are pipelined on one confirm channel, so throughput does not depend on round trips.
/// - After the first `connect()`, a dropped connection is re-established by itself with backoff (0.1 s
///   doubling to 5 s, jittered); consumers are subscribed again and their streams go on. Operations issued
///   meanwhile wait for the reconnect (up to `commandTimeoutSeconds`).
/// - Delivery is at least once: a message not acked before its channel or the connection goes away is
///   redelivered (with `redelivered == true`), and acking the stale copy is a logged no-op.
public final class BrokerConnection: Sendable {
    public let configuration: BrokerConfiguration
    private let logger: Logger
    private let mailbox: ConnectionMailbox

    public init(configuration: BrokerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.mailbox = ConnectionMailbox(commandTimeout: .seconds(configuration.commandTimeoutSeconds))
    }

    deinit {
        // A connection dropped without close() still stops its thread; without a continuation nobody waits.
        mailbox.submit(.close(nil))
    }

    /// True while the AMQP connection is up (false during a reconnect and after `close()`).
    public var isConnected: Bool {
        mailbox.isConnected
    }

    /// How many times the connection has been re-established after a drop.
    public var reconnectCount: Int {
        mailbox.reconnectCount
    }

    /// Starts the connection thread and connects. Fails with `.connectionFailed` if the first attempt
    /// fails (then `connect()` may be called again); later drops are repaired automatically.
    /// Calling it again while connected does nothing.
    public func connect() async throws(BrokerError) {
        let result = await withCheckedContinuation { (reply: Reply<Void>) in
            switch mailbox.start() {
            case .startThread:
                startThread(firstConnect: reply)
            case .alreadyRunning:
                reply.resume(returning: .success(()))
            case .closed:
                reply.resume(returning: .failure(.closed("the broker connection was closed; create a new one")))
            }
        }
        try result.get()
    }

    /// Publishes a persistent message (delivery mode 2) and returns once the broker has confirmed it.
    ///
    /// - Throws: `.publishNacked` if the broker refused it; `.connectionLost` if the connection dropped
    ///   before the confirm (the message may or may not be stored: publish again, consumers must tolerate
    ///   duplicates); `.channelClosed` if the broker rejected the publish (e.g. unknown exchange).
    public func publish(
        exchange: String = "", routingKey: String, body: [UInt8], headers: AMQPTable = [:],
        messageID: String? = nil, contentType: String? = "application/json"
    ) async throws(BrokerError) {
        try Validation.shortString(exchange, "exchange name")
        try Validation.shortString(routingKey, "routing key")
        try Validation.table(headers, "message headers")
        if let messageID {
            try Validation.shortString(messageID, "message id")
        }
        if let contentType {
            try Validation.shortString(contentType, "content type")
        }
        let request = PublishRequest(
            exchange: exchange, routingKey: routingKey, body: body, headers: headers, messageID: messageID,
            contentType: contentType)
        try await perform { .publish(request, $0) }
    }

    /// Declares a queue (idempotent for identical arguments).
    ///
    /// - Throws: `.channelClosed` with the server's text (reply code 406 PRECONDITION_FAILED) when the queue
    ///   exists with other arguments; the connection stays usable.
    public func declareQueue(_ name: String, durable: Bool = true, arguments: AMQPTable = [:]) async throws(BrokerError)
    {
        try Validation.shortString(name, "queue name")
        try Validation.table(arguments, "queue arguments")
        try await perform { .declareQueue(name: name, durable: durable, arguments: arguments, $0) }
    }

    /// Message and consumer counts of a queue, or nil when it does not exist.
    public func queueInfo(_ name: String) async throws(BrokerError) -> QueueInfo? {
        try Validation.shortString(name, "queue name")
        return try await perform { .queueInfo(name: name, $0) }
    }

    /// Deletes a queue and every message in it (no error if it does not exist).
    public func deleteQueue(_ name: String) async throws(BrokerError) {
        try Validation.shortString(name, "queue name")
        try await perform { .deleteQueue(name: name, $0) }
    }

    /// Removes every ready message from a queue; returns how many were removed.
    public func purgeQueue(_ name: String) async throws(BrokerError) -> Int {
        try Validation.shortString(name, "queue name")
        return try await perform { .purgeQueue(name: name, $0) }
    }

    /// Fetches one message (basic.get with manual ack), or nil when the queue is empty.
    public func get(queue: String) async throws(BrokerError) -> IncomingMessage? {
        try Validation.shortString(queue, "queue name")
        return try await perform { .get(queue: queue, $0) }
    }

    /// Consumes with manual acks; at most `prefetch` messages (0 = unlimited) are unacked at a time.
    ///
    /// The stream ends when the connection is closed or the consumer is cancelled (the iterating task is
    /// cancelled or the stream is dropped: that sends basic.cancel and closes the consumer's channel, so
    /// messages not yet acked return to the queue). After a reconnect the consumer is subscribed again and
    /// the stream continues.
    public func consume(queue: String, prefetch: Int) async throws(BrokerError) -> AsyncStream<IncomingMessage> {
        try Validation.shortString(queue, "queue name")
        guard let prefetchCount = UInt16(exactly: prefetch) else {
            throw .invalidArgument("prefetch \(prefetch) is out of range: use 0 (unlimited) to 65535")
        }
        let (stream, continuation) = AsyncStream.makeStream(of: IncomingMessage.self, bufferingPolicy: .unbounded)
        let id = mailbox.makeConsumerID()
        continuation.onTermination = { [mailbox] _ in
            mailbox.submit(.cancelConsumer(id: id))
        }
        let registration = ConsumerRegistration(
            id: id, queue: queue, prefetch: prefetchCount, continuation: continuation)
        do throws(BrokerError) {
            try await perform { .consume(registration, $0) }
        } catch {
            continuation.finish()
            throw error
        }
        return stream
    }

    /// Acknowledges a message. After a reconnect (or once its consumer is gone) this is a logged no-op:
    /// the broker has already put the message back and will deliver it again.
    public func ack(_ message: IncomingMessage) async {
        await settle(message, .ack)
    }

    /// Rejects a message; `requeue: true` puts it back on its queue (redelivered later), `false` drops it or
    /// dead-letters it if the queue has a dead-letter exchange. A stale delivery is a logged no-op, like `ack`.
    public func nack(_ message: IncomingMessage, requeue: Bool) async {
        await settle(message, .nack(requeue: requeue))
    }

    /// Clean shutdown: cancels consumers (their streams end), waits up to 5 s for outstanding publisher
    /// confirms, closes the channels and the connection, and stops the thread. Operations afterwards fail
    /// with `.closed`. Safe to call more than once.
    public func close() async {
        if mailbox.closeIfIdle() {
            return
        }
        await withCheckedContinuation { done in
            mailbox.submit(.close(done))
        }
    }

    // MARK: - Private

    private func settle(_ message: IncomingMessage, _ settlement: Settlement) async {
        guard message.delivery.connection == mailbox.id else {
            logger.error(
                "ignoring ack/nack of a message received on another BrokerConnection: settle it on its own connection",
                metadata: ["deliveryTag": "\(message.deliveryTag)"])
            return
        }
        await withCheckedContinuation { done in
            mailbox.submit(.settle(message.delivery, settlement, done))
        }
    }

    private func perform<Value: Sendable>(_ makeCommand: (Reply<Value>) -> Command) async throws(BrokerError) -> Value {
        let result = await withCheckedContinuation { (reply: Reply<Value>) in
            mailbox.submit(makeCommand(reply))
        }
        return try result.get()
    }

    private func startThread(firstConnect: Reply<Void>) {
        let configuration = configuration
        let logger = logger
        let mailbox = mailbox
        let thread = Thread {
            ConnectionWorker(configuration: configuration, logger: logger, mailbox: mailbox)
                .run(firstConnect: firstConnect)
        }
        thread.name = "amqp \(configuration.connectionName)"
        thread.start()
    }
}

/// Checks done before a command reaches the connection thread: a value rabbitmq-c cannot encode would
/// otherwise fail halfway through writing a frame and cost the whole connection.
enum Validation {
    /// AMQP short strings (names, keys, ids) hold at most 255 bytes.
    static func shortString(_ value: String, _ what: String) throws(BrokerError) {
        guard value.utf8.count <= 255 else {
            throw .invalidArgument("\(what) is \(value.utf8.count) bytes long; AMQP allows at most 255")
        }
    }

    static func table(_ table: AMQPTable, _ what: String) throws(BrokerError) {
        for (key, value) in table {
            try shortString(key, "a key in \(what)")
            try field(value, what)
        }
    }

    private static func field(_ value: AMQPFieldValue, _ what: String) throws(BrokerError) {
        switch value {
        case .table(let nested):
            try table(nested, what)
        case .array(let elements):
            for element in elements {
                try field(element, what)
            }
        default:
            break
        }
    }
}
