import CRabbitMQ
import Logging
import Metrics

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs on the connection thread and owns everything rabbitmq-c touches: the connection handle, the
/// channels, the publisher-confirm bookkeeping and the consumers. Nothing here is shared, so nothing here
/// is locked; callers talk to it only through `ConnectionMailbox`.
///
/// Channel layout on one connection:
/// - an RPC channel for queue.declare / delete / purge (a failed declare closes it; it is reopened lazily),
/// - a get channel for basic.get (kept apart so a failing declare cannot drop unacked `get` messages),
/// - a publish channel in confirm mode,
/// - one channel per consumer (its own basic.qos, so prefetch is per consumer).
///
/// The loop: take commands → run them → read every frame that is ready → sleep in `poll(2)` on the socket
/// and the mailbox's wake-up pipe (at most `idleWait`, so rabbitmq-c gets called often enough to send
/// heartbeats and notice missing ones).
final class ConnectionWorker {
    /// Reconnections of every broker connection in the process (`intellidocs_broker_reconnects_total`).
    static let reconnects = Counter(label: "intellidocs_broker_reconnects_total")
    private let configuration: BrokerConfiguration
    private let logger: Logger
    private let mailbox: ConnectionMailbox
    private let backoff = ReconnectBackoff()

    /// Upper bound for one sleep in `poll(2)`; keeps heartbeats serviced while idle.
    private let idleWait = Duration.milliseconds(250)
    /// Frames handled before commands get another turn, so a flood of deliveries cannot starve acks.
    private let framesPerTurn = 256
    /// How long `close()` waits for outstanding publisher confirms before giving up on them.
    private let closeConfirmWait = Duration.seconds(5)

    // Connection state (reset on every reconnect).
    private var connection: AMQPConnectionHandle?
    private var lastChannelNumber: UInt16 = 0
    /// Open channels and their session numbers; a delivery can be settled only on its own session.
    private var channelSessions: [UInt16: UInt64] = [:]
    private var lastSession: UInt64 = 0
    private var rpcChannel: OpenChannel?
    private var getChannel: OpenChannel?
    private var publisher: PublishChannel?
    private var consumerByChannel: [UInt16: UInt64] = [:]
    /// Deliveries whose header/body frames are still arriving, by channel.
    private var partialDeliveries: [UInt16: PartialDelivery] = [:]

    // Survives reconnects.
    private var consumers: [UInt64: Consumer] = [:]
    private var pending: [QueuedCommand] = []
    /// Publishes waiting for the number of unconfirmed messages to drop below
    /// `maxUnconfirmedPublishes`; sent in order as confirms arrive.
    private var heldPublishes: [(request: PublishRequest, reply: Reply<Void>)] = []
    private var failedReconnectAttempts = 0
    private var nextReconnectAttempt = ContinuousClock.now
    private var lastConnectionError: BrokerError?
    private var finished = false

    init(configuration: BrokerConfiguration, logger: Logger, mailbox: ConnectionMailbox) {
        self.configuration = configuration
        self.mailbox = mailbox
        var logger = logger
        logger[metadataKey: "amqp.connection"] = "\(configuration.connectionName)"
        self.logger = logger
    }

    // MARK: - Thread body

    /// Connects, reports the outcome to `firstConnect`, then serves commands until `close()`.
    func run(firstConnect: Reply<Void>) {
        do throws(BrokerError) {
            connection = try AMQPConnectionHandle.open(configuration)
        } catch {
            logger.error("cannot connect to the broker", metadata: ["error": "\(error)"])
            for queued in mailbox.returnToIdle() {
                queued.command.reject(with: error)
            }
            firstConnect.resume(returning: .failure(error))
            return
        }
        mailbox.setConnected(true)
        logger.info("connected to the broker", metadata: ["url": "\(configuration.redactedURL)"])
        firstConnect.resume(returning: .success(()))

        while !finished {
            runOnce()
        }
    }

    private func runOnce() {
        pending.append(contentsOf: mailbox.takeCommands())
        if connection == nil {
            if !heldPublishes.isEmpty {
                // Never sent: they wait for the reconnect (and time out) like any other command.
                let deadline = ContinuousClock.now + .seconds(configuration.commandTimeoutSeconds)
                pending.insert(
                    contentsOf: heldPublishes.map {
                        QueuedCommand(command: .publish($0.request, $0.reply), deadline: deadline)
                    }, at: 0)
                heldPublishes.removeAll()
            }
            serveWhileDisconnected()
            if finished {
                return
            }
            if ContinuousClock.now >= nextReconnectAttempt {
                reconnect()
            }
            if connection == nil {
                let wakeAt = pending.map(\.deadline).reduce(nextReconnectAttempt, min)
                waitForActivity(upTo: wakeAt - ContinuousClock.now)
                return
            }
        }
        executePending()
        if finished || connection == nil {
            return
        }
        let outcome = readFrames()
        releaseHeldPublishes()
        if outcome == .drained {
            waitForActivity(upTo: idleWait)
        }
    }

    /// Sleeps until the socket is readable, a command arrives, or `duration` (at most `idleWait`) passes.
    private func waitForActivity(upTo duration: Duration) {
        let capped = max(.zero, min(duration, idleWait))
        let milliseconds = Int32((capped / .milliseconds(1)).rounded(.up))
        var descriptors = [pollfd(fd: mailbox.wakeupDescriptor, events: Int16(POLLIN), revents: 0)]
        if let socket = connection?.socketDescriptor, socket >= 0 {
            descriptors.append(pollfd(fd: socket, events: Int16(POLLIN), revents: 0))
        }
        _ = poll(&descriptors, nfds_t(descriptors.count), milliseconds)
    }

    // MARK: - Commands

    /// Runs queued commands in order; stops early if the connection drops (the rest wait for the reconnect).
    private func executePending() {
        var index = 0
        while index < pending.count, connection != nil {
            let command = pending[index].command
            index += 1
            if case .close(let done) = command {
                pending.removeFirst(index)
                shutDown(done)  // rejects whatever was queued after the close
                return
            }
            execute(command)
        }
        pending.removeFirst(index)
    }

    private func execute(_ command: Command) {
        switch command {
        case .publish(let request, let reply):
            if heldPublishes.isEmpty, unconfirmedCount < publishWindow {
                publish(request, reply: reply)
            } else {
                heldPublishes.append((request, reply))
            }
        case .declareQueue(let name, let durable, let arguments, let reply):
            answer(reply) { () throws(BrokerError) in try declareQueue(name, durable: durable, arguments: arguments) }
        case .queueInfo(let name, let reply):
            answer(reply) { () throws(BrokerError) in try queueInfo(name) }
        case .deleteQueue(let name, let reply):
            answer(reply) { () throws(BrokerError) in try deleteQueue(name) }
        case .purgeQueue(let name, let reply):
            answer(reply) { () throws(BrokerError) in try purgeQueue(name) }
        case .get(let queue, let reply):
            answer(reply) { () throws(BrokerError) in try get(queue) }
        case .consume(let registration, let reply):
            answer(reply) { () throws(BrokerError) in try startConsumer(registration) }
        case .cancelConsumer(let id):
            cancelConsumer(id)
        case .settle(let delivery, let settlement, let done):
            settle(delivery, settlement)
            done.resume()
        case .close(let done):
            shutDown(done)
        }
    }

    private func answer<Value>(_ reply: Reply<Value>, _ body: () throws(BrokerError) -> Value) {
        do throws(BrokerError) {
            reply.resume(returning: .success(try body()))
        } catch {
            reply.resume(returning: .failure(error))
        }
    }

    /// While the connection is down: settle and cancel at once (they need no broker), give up on commands
    /// that waited longer than `commandTimeoutSeconds`, keep the rest for after the reconnect.
    private func serveWhileDisconnected() {
        let now = ContinuousClock.now
        var waiting: [QueuedCommand] = []
        for (index, queued) in pending.enumerated() {
            switch queued.command {
            case .settle(let delivery, _, let done):
                logStaleSettlement(delivery)
                done.resume()
            case .cancelConsumer(let id):
                cancelConsumer(id)
            case .close(let done):
                pending = waiting + pending[(index + 1)...]
                shutDown(done)
                return
            default:
                if now >= queued.deadline {
                    let cause = lastConnectionError.map { " (last error: \($0.message))" } ?? ""
                    queued.command.reject(
                        with: .timeout(
                            "the broker connection has been down for more than \(configuration.commandTimeoutSeconds) s; "
                                + "gave up waiting for the reconnect\(cause)"))
                } else {
                    waiting.append(queued)
                }
            }
        }
        pending = waiting
    }

    // MARK: - Publishing

    private func publish(_ request: PublishRequest, reply: Reply<Void>) {
        do throws(BrokerError) {
            let state = try requireConnection()
            let channel = try publishChannel()
            let status = withScratchPool { pool in
                var properties = amqp_basic_properties_t()
                var flags = amqp_flags_t(AMQP_BASIC_DELIVERY_MODE_FLAG)
                properties.delivery_mode = 2  // persistent
                if !request.headers.isEmpty {
                    flags |= amqp_flags_t(AMQP_BASIC_HEADERS_FLAG)
                    properties.headers = pool.table(request.headers)
                }
                if let messageID = request.messageID {
                    flags |= amqp_flags_t(AMQP_BASIC_MESSAGE_ID_FLAG)
                    properties.message_id = pool.bytes(messageID)
                }
                if let contentType = request.contentType {
                    flags |= amqp_flags_t(AMQP_BASIC_CONTENT_TYPE_FLAG)
                    properties.content_type = pool.bytes(contentType)
                }
                properties._flags = flags
                return request.body.withUnsafeBytes { body in
                    amqp_basic_publish(
                        state, channel, pool.bytes(request.exchange), pool.bytes(request.routingKey), 0, 0,
                        &properties,
                        amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress)))
                }
            }
            try checkStatus(
                status, "publishing to exchange '\(request.exchange)' with routing key '\(request.routingKey)'")
            guard publisher != nil else {
                throw .connectionLost("the publish channel closed while publishing: publish again")
            }
            publisher?.register(reply)
        } catch {
            reply.resume(returning: .failure(error))
        }
    }

    /// `maxUnconfirmedPublishes`, but at least 1 so publishing can never stall completely.
    private var publishWindow: Int {
        max(1, configuration.maxUnconfirmedPublishes)
    }

    private var unconfirmedCount: Int {
        publisher?.waitingCount ?? 0
    }

    /// Sends held publishes while the unconfirmed window has room.
    private func releaseHeldPublishes() {
        var released = 0
        while released < heldPublishes.count, connection != nil,
            unconfirmedCount < publishWindow
        {
            publish(heldPublishes[released].request, reply: heldPublishes[released].reply)
            released += 1
        }
        heldPublishes.removeFirst(released)
    }

    /// The confirm-mode channel, opened (and put in confirm mode) on first use.
    private func publishChannel() throws(BrokerError) -> UInt16 {
        if let publisher {
            return publisher.channel.number
        }
        let state = try requireConnection()
        let channel = try openChannel()
        amqp_confirm_select(state, channel.number)
        _ = try check(amqp_get_rpc_reply(state), on: channel.number, "enabling publisher confirms")
        publisher = PublishChannel(channel: channel)
        return channel.number
    }

    private func confirm(upTo deliveryTag: UInt64, multiple: Bool, nacked: Bool) {
        guard let replies = publisher?.take(upTo: deliveryTag, multiple: multiple) else {
            return
        }
        let result: Result<Void, BrokerError> =
            nacked
            ? .failure(
                .publishNacked(
                    "the broker refused the message (basic.nack) and did not store it: retry later; "
                        + "check the queue's limits and the broker's log"))
            : .success(())
        for reply in replies {
            reply.resume(returning: result)
        }
    }

    // MARK: - Queues

    private func declareQueue(_ name: String, durable: Bool, arguments: AMQPTable) throws(BrokerError) {
        let state = try requireConnection()
        let channel = try rpcChannelNumber()
        try withScratchPool { pool throws(BrokerError) in
            amqp_queue_declare(state, channel, pool.bytes(name), 0, durable ? 1 : 0, 0, 0, pool.table(arguments))
            _ = try check(amqp_get_rpc_reply(state), on: channel, "declaring queue '\(name)'")
        }
    }

    /// Passive declare: nil when the broker answers 404 (which closes the RPC channel; it is reopened lazily).
    private func queueInfo(_ name: String) throws(BrokerError) -> QueueInfo? {
        let state = try requireConnection()
        let channel = try rpcChannelNumber()
        do throws(BrokerError) {
            return try withScratchPool { pool throws(BrokerError) in
                amqp_queue_declare(
                    state, channel, pool.bytes(name), 1, 0, 0, 0, amqp_table_t(num_entries: 0, entries: nil))
                let reply = try check(amqp_get_rpc_reply(state), on: channel, "looking up queue '\(name)'")
                let declareOK = try decoded(reply, as: amqp_queue_declare_ok_t.self)
                return QueueInfo(
                    name: declareOK.queue.copiedString, messageCount: Int(declareOK.message_count),
                    consumerCount: Int(declareOK.consumer_count))
            }
        } catch {
            guard error.code == .channelClosed, error.serverReplyCode == Int(AMQP_NOT_FOUND) else {
                throw error
            }
            return nil
        }
    }

    private func deleteQueue(_ name: String) throws(BrokerError) {
        let state = try requireConnection()
        let channel = try rpcChannelNumber()
        try withScratchPool { pool throws(BrokerError) in
            amqp_queue_delete(state, channel, pool.bytes(name), 0, 0)
            _ = try check(amqp_get_rpc_reply(state), on: channel, "deleting queue '\(name)'")
        }
    }

    private func purgeQueue(_ name: String) throws(BrokerError) -> Int {
        let state = try requireConnection()
        let channel = try rpcChannelNumber()
        return try withScratchPool { pool throws(BrokerError) in
            amqp_queue_purge(state, channel, pool.bytes(name))
            let reply = try check(amqp_get_rpc_reply(state), on: channel, "purging queue '\(name)'")
            return Int(try decoded(reply, as: amqp_queue_purge_ok_t.self).message_count)
        }
    }

    private func get(_ queue: String) throws(BrokerError) -> IncomingMessage? {
        let state = try requireConnection()
        let channel: OpenChannel
        if let getChannel {
            channel = getChannel
        } else {
            channel = try openChannel()
            getChannel = channel
        }
        let what = "getting a message from queue '\(queue)'"
        let getReply = withScratchPool { pool in
            amqp_basic_get(state, channel.number, pool.bytes(queue), 0)
        }
        _ = try check(getReply, on: channel.number, what)
        guard getReply.reply.id == INTELLIDOCS_AMQP_BASIC_GET_OK_METHOD else {
            return nil  // basic.get-empty
        }
        let getOK = try decoded(getReply, as: amqp_basic_get_ok_t.self)
        let deliveryTag = getOK.delivery_tag
        let redelivered = getOK.redelivered != 0
        let exchange = getOK.exchange.copiedString
        let routingKey = getOK.routing_key.copiedString

        var message = amqp_message_t()
        _ = try check(amqp_read_message(state, channel.number, &message, 0), on: channel.number, what)
        defer { amqp_destroy_message(&message) }
        let properties = MessageProperties(decoding: message.properties)
        return IncomingMessage(
            body: message.body.copiedBytes, headers: properties.headers, redelivered: redelivered,
            routingKey: routingKey, exchange: exchange, messageID: properties.messageID,
            contentType: properties.contentType,
            delivery: DeliveryIdentity(
                connection: mailbox.id, session: channel.session, channel: channel.number, deliveryTag: deliveryTag))
    }

    // MARK: - Consumers

    private func startConsumer(_ registration: ConsumerRegistration) throws(BrokerError) {
        let consumer = Consumer(registration: registration, tag: "intellidocs.consumer.\(registration.id)")
        try subscribe(consumer)
        consumers[registration.id] = consumer
    }

    /// Opens a channel for `consumer`, sets its prefetch and starts basic.consume with manual acks.
    private func subscribe(_ consumer: Consumer) throws(BrokerError) {
        let state = try requireConnection()
        let channel = try openChannel()
        let queue = consumer.registration.queue
        amqp_basic_qos(state, channel.number, 0, consumer.registration.prefetch, 0)
        _ = try check(amqp_get_rpc_reply(state), on: channel.number, "setting prefetch for queue '\(queue)'")
        try withScratchPool { pool throws(BrokerError) in
            amqp_basic_consume(
                state, channel.number, pool.bytes(queue), pool.bytes(consumer.tag), 0, 0, 0,
                amqp_table_t(num_entries: 0, entries: nil))
            _ = try check(amqp_get_rpc_reply(state), on: channel.number, "consuming from queue '\(queue)'")
        }
        consumer.channel = channel
        consumerByChannel[channel.number] = consumer.registration.id
    }

    /// Stops a consumer at the caller's request: basic.cancel, then closing its channel, which hands every
    /// delivery the caller has not acked back to the queue.
    private func cancelConsumer(_ id: UInt64) {
        guard let consumer = consumers.removeValue(forKey: id) else {
            return
        }
        if let channel = consumer.channel, let state = connection?.state {
            let tag = consumer.tag
            let cancelled: Bool = withScratchPool { pool in
                amqp_basic_cancel(state, channel.number, pool.bytes(tag))
                return (try? check(amqp_get_rpc_reply(state), on: channel.number, "cancelling consumer '\(tag)'"))
                    != nil
            }
            if cancelled {
                closeChannel(channel.number)
            }
        }
        consumer.registration.continuation.finish()
        logger.debug("consumer cancelled", metadata: ["queue": "\(consumer.registration.queue)"])
    }

    /// After the broker closed a consumer's channel (for example an ack it did not accept), subscribe
    /// again once; if that fails too (queue deleted), end the consumer's stream.
    private func resubscribeAfterChannelClose(_ consumer: Consumer, reason: String) {
        logger.warning(
            "the broker closed a consumer's channel; subscribing again",
            metadata: ["queue": "\(consumer.registration.queue)", "reason": "\(reason)"])
        do throws(BrokerError) {
            try subscribe(consumer)
        } catch {
            guard connection != nil else {
                return  // the reconnect will subscribe it again
            }
            logger.error(
                "cannot consume from queue again; ending its stream",
                metadata: ["queue": "\(consumer.registration.queue)", "error": "\(error)"])
            consumers.removeValue(forKey: consumer.registration.id)
            consumer.registration.continuation.finish()
        }
    }

    private func settle(_ delivery: DeliveryIdentity, _ settlement: Settlement) {
        guard let state = connection?.state, channelSessions[delivery.channel] == delivery.session else {
            logStaleSettlement(delivery)
            return
        }
        let status: Int32
        switch settlement {
        case .ack:
            status = amqp_basic_ack(state, delivery.channel, delivery.deliveryTag, 0)
        case .nack(let requeue):
            status = amqp_basic_nack(state, delivery.channel, delivery.deliveryTag, 0, requeue ? 1 : 0)
        }
        try? checkStatus(status, "settling delivery \(delivery.deliveryTag)")
    }

    private func logStaleSettlement(_ delivery: DeliveryIdentity) {
        logger.info(
            "ignoring ack/nack of a delivery from a channel that has since closed; the broker redelivers it",
            metadata: ["deliveryTag": "\(delivery.deliveryTag)"])
    }

    // MARK: - Incoming frames

    private enum ReadOutcome {
        /// No complete frame is buffered: safe to sleep in poll(2).
        case drained
        /// Stopped after `framesPerTurn`; more may be buffered inside rabbitmq-c.
        case busy
    }

    /// Handles every frame that is ready without blocking, then lets rabbitmq-c recycle frame memory.
    private func readFrames() -> ReadOutcome {
        defer {
            if let state = connection?.state {
                amqp_maybe_release_buffers(state)
            }
        }
        for _ in 0..<framesPerTurn {
            guard let state = connection?.state else {
                return .drained
            }
            var frame = amqp_frame_t()
            // 1 µs rather than 0: with a zero timeout rabbitmq-c never reports a missed heartbeat.
            var timeout = timeval(tv_sec: 0, tv_usec: 1)
            let status = amqp_simple_wait_frame_noblock(state, &frame, &timeout)
            if status == AMQPStatus.timeout {
                return .drained
            }
            do throws(BrokerError) {
                try checkStatus(status, "reading from the broker")
            } catch {
                return .drained
            }
            handle(frame)
        }
        return .busy
    }

    private func handle(_ frame: amqp_frame_t) {
        let channel = frame.channel
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_METHOD:
            handleMethod(frame.payload.method, on: channel)
        case AMQP_FRAME_HEADER:
            guard var delivery = partialDeliveries.removeValue(forKey: channel) else {
                return  // content of a basic.return or of a cancelled consumer
            }
            let header = frame.payload.properties
            delivery.properties =
                header.decoded.map {
                    MessageProperties(decoding: $0.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee)
                } ?? MessageProperties()
            delivery.expectedBodySize = Int(header.body_size)
            delivery.body.reserveCapacity(delivery.expectedBodySize)
            receivedContent(delivery, on: channel)
        case AMQP_FRAME_BODY:
            guard var delivery = partialDeliveries.removeValue(forKey: channel), delivery.properties != nil else {
                return
            }
            let fragment = frame.payload.body_fragment
            if fragment.len > 0, let bytes = fragment.bytes {
                delivery.body.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: fragment.len))
            }
            receivedContent(delivery, on: channel)
        default:
            break  // heartbeats are answered inside rabbitmq-c
        }
    }

    /// Yields the delivery once its body is complete, otherwise keeps collecting.
    private func receivedContent(_ delivery: PartialDelivery, on channel: UInt16) {
        guard delivery.body.count >= delivery.expectedBodySize else {
            partialDeliveries[channel] = delivery
            return
        }
        guard let consumer = consumers[delivery.consumerID], let properties = delivery.properties else {
            return
        }
        let message = IncomingMessage(
            body: delivery.body, headers: properties.headers, redelivered: delivery.redelivered,
            routingKey: delivery.routingKey, exchange: delivery.exchange, messageID: properties.messageID,
            contentType: properties.contentType,
            delivery: DeliveryIdentity(
                connection: mailbox.id, session: delivery.session, channel: channel,
                deliveryTag: delivery.deliveryTag))
        // If the stream is already gone, its cancel command is queued; the broker requeues the message when
        // the consumer's channel closes.
        consumer.registration.continuation.yield(message)
    }

    private func handleMethod(_ method: amqp_method_t, on channel: UInt16) {
        switch method.id {
        case INTELLIDOCS_AMQP_BASIC_DELIVER_METHOD:
            guard let consumerID = consumerByChannel[channel], let session = channelSessions[channel],
                let deliver = method.decoded?.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            else {
                return  // for a consumer cancelled a moment ago: requeued when its channel closes
            }
            partialDeliveries[channel] = PartialDelivery(
                consumerID: consumerID, session: session, deliveryTag: deliver.delivery_tag,
                redelivered: deliver.redelivered != 0, exchange: deliver.exchange.copiedString,
                routingKey: deliver.routing_key.copiedString)

        case INTELLIDOCS_AMQP_BASIC_ACK_METHOD where channel == publisher?.channel.number:
            if let ack = method.decoded?.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee {
                confirm(upTo: ack.delivery_tag, multiple: ack.multiple != 0, nacked: false)
            }

        case INTELLIDOCS_AMQP_BASIC_NACK_METHOD where channel == publisher?.channel.number:
            if let nack = method.decoded?.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee {
                confirm(upTo: nack.delivery_tag, multiple: nack.multiple != 0, nacked: true)
            }

        case INTELLIDOCS_AMQP_BASIC_CANCEL_METHOD:
            // consumer_cancel_notify: the broker ended a consumer, e.g. because its queue was deleted.
            guard let consumerID = consumerByChannel.removeValue(forKey: channel),
                let consumer = consumers.removeValue(forKey: consumerID)
            else {
                return
            }
            logger.warning(
                "the broker cancelled a consumer (queue deleted?); ending its stream",
                metadata: ["queue": "\(consumer.registration.queue)"])
            closeChannel(channel)
            consumer.registration.continuation.finish()

        case INTELLIDOCS_AMQP_CHANNEL_CLOSE_METHOD:
            let close = method.decoded?.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let reason = close?.reply_text.copiedString ?? "no reason given"
            // Only the publish channel has callers waiting on it; a close there (e.g. an unknown exchange) takes
            // every unconfirmed publish with it, and the broker does not say which publish caused it.
            let error = BrokerError.channelClosed(
                "the broker closed the publish channel before confirming the message (\(reason)); this or another "
                    + "publish in flight caused it, and the message may or may not be stored",
                serverReplyCode: close.map { Int($0.reply_code) })
            let consumer = consumerByChannel[channel].flatMap { consumers[$0] }
            acknowledgeServerChannelClose(channel, error: error)
            if let consumer, connection != nil {
                resubscribeAfterChannelClose(consumer, reason: reason)
            }

        case INTELLIDOCS_AMQP_CONNECTION_CLOSE_METHOD:
            let close = method.decoded?.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            let reason = close?.reply_text.copiedString ?? "no reason given"
            if let state = connection?.state {
                _ = intellidocs_amqp_send_connection_close_ok(state)
            }
            dropConnection(
                .connectionLost(
                    "the broker closed the connection: \(reason)", serverReplyCode: close.map { Int($0.reply_code) }))

        case INTELLIDOCS_AMQP_CONNECTION_BLOCKED_METHOD:
            let blocked = method.decoded?.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee
            logger.warning(
                "the broker blocked publishing on this connection (memory or disk alarm); publishes wait",
                metadata: ["reason": "\(blocked?.reason.copiedString ?? "")"])

        case INTELLIDOCS_AMQP_CONNECTION_UNBLOCKED_METHOD:
            logger.notice("the broker unblocked publishing on this connection")

        default:
            logger.debug(
                "ignoring method from the broker", metadata: ["method": "\(method.id)", "channel": "\(channel)"])
        }
    }

    // MARK: - Channels

    private func rpcChannelNumber() throws(BrokerError) -> UInt16 {
        if let rpcChannel {
            return rpcChannel.number
        }
        let channel = try openChannel()
        rpcChannel = channel
        return channel.number
    }

    private func openChannel() throws(BrokerError) -> OpenChannel {
        let state = try requireConnection()
        let number = try unusedChannelNumber()
        amqp_channel_open(state, number)
        lastSession += 1
        channelSessions[number] = lastSession
        _ = try check(amqp_get_rpc_reply(state), on: number, "opening channel \(number)")
        return OpenChannel(number: number, session: lastSession)
    }

    /// Channel numbers are handed out round-robin, so a number is reused as late as possible and a frame
    /// still queued for a closed channel cannot be mistaken for one of its successor.
    private func unusedChannelNumber() throws(BrokerError) -> UInt16 {
        let maximum = connection?.channelMax ?? UInt16.max
        for _ in 0..<Int(maximum) {
            lastChannelNumber = lastChannelNumber >= maximum ? 1 : lastChannelNumber + 1
            if channelSessions[lastChannelNumber] == nil {
                return lastChannelNumber
            }
        }
        throw .invalidArgument("all \(maximum) channels of the connection are in use: too many consumers")
    }

    /// Client-initiated close (after basic.cancel); errors only matter if they broke the connection.
    private func closeChannel(_ number: UInt16) {
        guard let state = connection?.state, channelSessions[number] != nil else {
            return
        }
        _ = try? check(amqp_channel_close(state, number, AMQP_REPLY_SUCCESS), on: number, "closing channel \(number)")
        forgetChannel(number, error: .closed("the channel was closed"))
    }

    /// The broker closed `number`: answer close-ok (the protocol requires it before the number is reused)
    /// and forget everything that lived on it.
    private func acknowledgeServerChannelClose(_ number: UInt16, error: BrokerError) {
        if let state = connection?.state {
            let status = intellidocs_amqp_send_channel_close_ok(state, number)
            if status != AMQPStatus.ok {
                forgetChannel(number, error: error)
                dropConnection(.connectionLost("answering channel.close failed: \(AMQPStatus.describe(status))"))
                return
            }
        }
        forgetChannel(number, error: error)
    }

    private func forgetChannel(_ number: UInt16, error: BrokerError) {
        channelSessions.removeValue(forKey: number)
        partialDeliveries.removeValue(forKey: number)
        if rpcChannel?.number == number {
            rpcChannel = nil
        }
        if getChannel?.number == number {
            getChannel = nil
        }
        if publisher?.channel.number == number, let replies = publisher?.takeAll() {
            publisher = nil
            for reply in replies {
                reply.resume(returning: .failure(error))
            }
        }
        if let consumerID = consumerByChannel.removeValue(forKey: number) {
            consumers[consumerID]?.channel = nil
        }
    }

    // MARK: - Checking C results

    private func requireConnection() throws(BrokerError) -> amqp_connection_state_t {
        guard let state = connection?.state else {
            throw .connectionLost(lastConnectionError?.message ?? "the broker connection is down")
        }
        return state
    }

    /// Turns an RPC reply into its decoded method or a `BrokerError`, first repairing the connection's
    /// state: a channel.close is answered and the channel forgotten (the connection stays usable); a
    /// connection.close or a library failure (socket error, timeout) drops the connection, which starts a
    /// reconnect.
    private func check(
        _ reply: amqp_rpc_reply_t, on channel: UInt16, _ what: @autoclosure () -> String
    ) throws(BrokerError) -> amqp_rpc_reply_t {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return reply

        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == INTELLIDOCS_AMQP_CHANNEL_CLOSE_METHOD:
            let close = reply.reply.decoded?.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let error = BrokerError.channelClosed(
                "\(what()) failed: \(close?.reply_text.copiedString ?? "the broker closed the channel")",
                serverReplyCode: close.map { Int($0.reply_code) })
            acknowledgeServerChannelClose(channel, error: error)
            throw error

        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == INTELLIDOCS_AMQP_CONNECTION_CLOSE_METHOD:
            let close = reply.reply.decoded?.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            if let state = connection?.state {
                _ = intellidocs_amqp_send_connection_close_ok(state)
            }
            let error = BrokerError.connectionLost(
                "\(what()) failed: the broker closed the connection: "
                    + (close?.reply_text.copiedString ?? "no reason given"),
                serverReplyCode: close.map { Int($0.reply_code) })
            dropConnection(error)
            throw error

        case AMQP_RESPONSE_SERVER_EXCEPTION:
            let error = BrokerError.connectionLost(
                "\(what()) failed: unexpected answer \(reply.reply.id) from the broker")
            dropConnection(error)
            throw error

        case AMQP_RESPONSE_LIBRARY_EXCEPTION where reply.library_error == AMQPStatus.timeout:
            // rabbitmq-c has already closed the socket: a late answer must not be read as the next one's.
            let error = BrokerError.timeout(
                "\(what()): no answer from the broker within \(configuration.rpcTimeoutSeconds) s; reconnecting")
            dropConnection(error)
            throw error

        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let error = BrokerError.connectionLost("\(what()) failed: \(AMQPStatus.describe(reply.library_error))")
            dropConnection(error)
            throw error

        default:
            let error = BrokerError.connectionLost("\(what()) failed: the broker closed the socket")
            dropConnection(error)
            throw error
        }
    }

    /// For calls that return a plain status (publish, ack, frame reads): any failure leaves the
    /// connection's framing in an unknown state, so the connection is dropped and re-established.
    private func checkStatus(_ status: Int32, _ what: @autoclosure () -> String) throws(BrokerError) {
        guard status != AMQPStatus.ok else {
            return
        }
        let error = BrokerError.connectionLost("\(what()) failed: \(AMQPStatus.describe(status))")
        dropConnection(error)
        throw error
    }

    private func decoded<Method>(_ reply: amqp_rpc_reply_t, as type: Method.Type) throws(BrokerError) -> Method {
        guard let pointer = reply.reply.decoded else {
            let error = BrokerError.connectionLost("the broker's answer \(reply.reply.id) carried no arguments")
            dropConnection(error)
            throw error
        }
        return pointer.assumingMemoryBound(to: Method.self).pointee
    }

    // MARK: - Losing and regaining the connection

    /// Destroys the connection and fails everything that was waiting on it; the loop reconnects next.
    private func dropConnection(_ error: BrokerError) {
        guard connection != nil else {
            return
        }
        logger.warning("lost the broker connection; reconnecting", metadata: ["error": "\(error.message)"])
        connection = nil  // deinit destroys the rabbitmq-c state and closes the socket
        lastConnectionError = error
        mailbox.setConnected(false)

        let confirmError = BrokerError.connectionLost(
            "the connection dropped before the broker confirmed the message (\(error.message)); "
                + "it may or may not be stored: publish it again")
        for reply in publisher?.takeAll() ?? [] {
            reply.resume(returning: .failure(confirmError))
        }
        publisher = nil
        rpcChannel = nil
        getChannel = nil
        channelSessions.removeAll()
        consumerByChannel.removeAll()
        partialDeliveries.removeAll()
        lastChannelNumber = 0
        for consumer in consumers.values {
            consumer.channel = nil
        }
        nextReconnectAttempt = .now + backoff.delay(afterFailedAttempts: failedReconnectAttempts)
    }

    private func reconnect() {
        do throws(BrokerError) {
            connection = try AMQPConnectionHandle.open(configuration)
            for consumer in consumers.values.sorted(by: { $0.registration.id < $1.registration.id }) {
                do throws(BrokerError) {
                    try subscribe(consumer)
                } catch {
                    guard connection != nil else {
                        throw error
                    }
                    logger.error(
                        "cannot consume from queue after reconnecting; ending its stream",
                        metadata: ["queue": "\(consumer.registration.queue)", "error": "\(error)"])
                    consumers.removeValue(forKey: consumer.registration.id)
                    consumer.registration.continuation.finish()
                }
            }
            mailbox.recordReconnect()
            Self.reconnects.increment()
            logger.notice(
                "reconnected to the broker",
                metadata: [
                    "failedAttempts": "\(failedReconnectAttempts)", "consumers": "\(consumers.count)",
                    "reconnectCount": "\(mailbox.reconnectCount)",
                ])
            failedReconnectAttempts = 0
            lastConnectionError = nil
        } catch {
            connection = nil
            failedReconnectAttempts += 1
            lastConnectionError = error
            let delay = backoff.delay(afterFailedAttempts: failedReconnectAttempts)
            nextReconnectAttempt = .now + delay
            logger.warning(
                "reconnect to the broker failed",
                metadata: [
                    "attempt": "\(failedReconnectAttempts)", "retryInMilliseconds": "\(Int(delay / .milliseconds(1)))",
                    "error": "\(error.message)",
                ])
        }
    }

    // MARK: - Shutdown

    /// Clean close: reject what is still queued, cancel consumers, wait (bounded) for outstanding publisher
    /// confirms, close the channels and the connection, end every stream, and let the thread finish.
    private func shutDown(_ done: CheckedContinuation<Void, Never>?) {
        finished = true
        let closedError = BrokerError.closed("the broker connection was closed")
        for queued in pending + mailbox.markClosed() {
            queued.command.reject(with: closedError)
        }
        pending.removeAll()

        if connection != nil {
            for id in consumers.keys.sorted() {
                cancelConsumer(id)
            }
            let deadline = ContinuousClock.now + closeConfirmWait
            while publisher?.isWaiting == true || !heldPublishes.isEmpty, connection != nil,
                ContinuousClock.now < deadline
            {
                releaseHeldPublishes()
                if readFrames() == .drained {
                    waitForActivity(upTo: .milliseconds(50))
                }
            }
            for number in channelSessions.keys.sorted() {
                closeChannel(number)
            }
            if let state = connection?.state {
                let reply = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
                if reply.reply_type != AMQP_RESPONSE_NORMAL {
                    logger.debug("connection.close was not answered cleanly; dropping the socket")
                }
            }
            connection = nil
        }
        for reply in (publisher?.takeAll() ?? []) + heldPublishes.map(\.reply) {
            reply.resume(returning: .failure(closedError))
        }
        publisher = nil
        heldPublishes.removeAll()
        for consumer in consumers.values {
            consumer.registration.continuation.finish()
        }
        consumers.removeAll()
        mailbox.setConnected(false)
        logger.info("closed the broker connection")
        done?.resume()
    }
}

// MARK: - Bookkeeping types

/// A channel this connection opened, with its never-reused session number.
struct OpenChannel {
    let number: UInt16
    let session: UInt64
}

/// The publisher-confirm channel: sequence numbers of unconfirmed publishes and who waits for them.
///
/// Publishes are pipelined: each is written at once and registered here; the broker's basic.ack /
/// basic.nack (possibly with `multiple`, covering every tag up to it) resolves the waiting callers.
struct PublishChannel {
    let channel: OpenChannel
    private var nextSequence: UInt64 = 1
    /// Every tag below this one is resolved; lets `multiple` acks run in amortised O(1) per message.
    private var lowestUnresolved: UInt64 = 1
    private var waiting: [UInt64: Reply<Void>] = [:]

    init(channel: OpenChannel) {
        self.channel = channel
    }

    var isWaiting: Bool { !waiting.isEmpty }

    var waitingCount: Int { waiting.count }

    mutating func register(_ reply: Reply<Void>) {
        waiting[nextSequence] = reply
        nextSequence += 1
    }

    mutating func take(upTo deliveryTag: UInt64, multiple: Bool) -> [Reply<Void>] {
        var resolved: [Reply<Void>] = []
        if multiple {
            // Tag 0 with `multiple` means "everything published so far".
            let last = deliveryTag == 0 ? nextSequence - 1 : min(deliveryTag, nextSequence - 1)
            if lowestUnresolved <= last {
                for sequence in lowestUnresolved...last {
                    if let reply = waiting.removeValue(forKey: sequence) {
                        resolved.append(reply)
                    }
                }
                lowestUnresolved = last + 1
            }
        } else if let reply = waiting.removeValue(forKey: deliveryTag) {
            resolved.append(reply)
        }
        while lowestUnresolved < nextSequence, waiting[lowestUnresolved] == nil {
            lowestUnresolved += 1
        }
        return resolved
    }

    mutating func takeAll() -> [Reply<Void>] {
        defer { waiting.removeAll() }
        return waiting.sorted(by: { $0.key < $1.key }).map(\.value)
    }
}

/// A consumer as the connection thread knows it; `channel` is nil while it is not subscribed
/// (between a connection drop and the re-subscribe).
final class Consumer {
    let registration: ConsumerRegistration
    let tag: String
    var channel: OpenChannel?

    init(registration: ConsumerRegistration, tag: String) {
        self.registration = registration
        self.tag = tag
    }
}

/// A basic.deliver whose header and body frames are still being read.
struct PartialDelivery {
    let consumerID: UInt64
    let session: UInt64
    let deliveryTag: UInt64
    let redelivered: Bool
    let exchange: String
    let routingKey: String
    var properties: MessageProperties?
    var expectedBodySize = 0
    var body: [UInt8] = []
}
