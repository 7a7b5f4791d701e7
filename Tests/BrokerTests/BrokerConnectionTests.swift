import Broker
import Foundation
import Testing

/// Integration tests against the real RabbitMQ named by INTELLIDOCS_AMQP_URL (deploy/local/stack up).
/// Every test uses its own connection and uniquely named queues and deletes them at the end. Serialized so
/// the printed publish rate is not disturbed by the other tests.
@Suite("BrokerConnection against RabbitMQ", .serialized)
struct BrokerConnectionTests {
    @Test("publish → consume → ack keeps body bytes and typed headers intact")
    func roundTrip() async throws {
        try await withTestConnection("roundtrip") { connection in
            try await withTemporaryQueue(connection, "roundtrip") { queue in
                let body: [UInt8] = Array(0...255) + Array(#"{"ok":true}"#.utf8)
                let headers: AMQPTable = [
                    "string": "héllo wörld",
                    "int": 42,
                    "negative": -7,
                    "bool": true,
                    "double": 2.5,
                    "nested": ["inner": "x", "count": 3, "deeper": ["flag": false]],
                    "list": [1, "two", ["three": 3]],
                    "stamp": .timestamp(1_700_000_000),
                    "raw": .bytes([0, 255, 1]),
                    "nothing": .void,
                ]
                try await connection.publish(routingKey: queue, body: body, headers: headers, messageID: "msg-1")

                let inbox = Inbox(try await connection.consume(queue: queue, prefetch: 10))
                let message = try #require(await inbox.waitFor(count: 1).first)
                #expect(message.body == body)
                #expect(message.headers == headers)
                #expect(message.messageID == "msg-1")
                #expect(message.contentType == "application/json")
                #expect(message.routingKey == queue)
                #expect(message.exchange == "")
                #expect(!message.redelivered)
                await connection.ack(message)
                await inbox.cancel()

                // Acked, so cancelling the consumer (which closes its channel) did not requeue it.
                #expect(try await connection.get(queue: queue) == nil)
            }
        }
    }

    @Test("2,000 concurrent publishes are all confirmed and consumed exactly once")
    func pipelinedPublishes() async throws {
        try await withTestConnection("bulk") { connection in
            try await withTemporaryQueue(connection, "bulk") { queue in
                let count = 2_000
                let start = ContinuousClock.now
                try await withThrowingDiscardingTaskGroup { group in
                    for index in 0..<count {
                        group.addTask {
                            try await connection.publish(routingKey: queue, body: Array("\(index)".utf8))
                        }
                    }
                }
                let elapsed = ContinuousClock.now - start
                let rate = Double(count) / (elapsed / .seconds(1))
                print(
                    "published \(count) persistent messages with publisher confirms in \(elapsed): \(Int(rate)) msg/s")

                // Confirmed means enqueued: all of them are in the queue now.
                #expect(try await connection.queueInfo(queue)?.messageCount == count)

                let inbox = Inbox(try await connection.consume(queue: queue, prefetch: 200), ackingWith: connection)
                _ = await inbox.waitFor(count: count, timeout: .seconds(30))
                try await Task.sleep(for: .milliseconds(300))  // room for any duplicate to show up
                let messages = inbox.messages
                await inbox.cancel()

                let bodies = messages.map { String(decoding: $0.body, as: UTF8.self) }
                #expect(messages.count == count)
                #expect(Set(bodies) == Set((0..<count).map(String.init)))
                #expect(messages.allSatisfy { !$0.redelivered })
                #expect(try await connection.queueInfo(queue)?.messageCount == 0)
            }
        }
    }

    @Test("nack with requeue redelivers the message with redelivered = true")
    func nackRequeue() async throws {
        try await withTestConnection("nack") { connection in
            try await withTemporaryQueue(connection, "nack") { queue in
                try await connection.publish(routingKey: queue, body: Array("again".utf8))
                let inbox = Inbox(try await connection.consume(queue: queue, prefetch: 1))
                let first = try #require(await inbox.waitFor(count: 1).first)
                #expect(!first.redelivered)
                await connection.nack(first, requeue: true)

                let messages = await inbox.waitFor(count: 2)
                let second = try #require(messages.dropFirst().first)
                #expect(second.redelivered)
                #expect(second.body == Array("again".utf8))
                await connection.ack(second)
                await inbox.cancel()
            }
        }
    }

    @Test("prefetch 5 without acks delivers exactly 5 messages")
    func prefetchHonoured() async throws {
        try await withTestConnection("prefetch") { connection in
            try await withTemporaryQueue(connection, "prefetch") { queue in
                for index in 0..<20 {
                    try await connection.publish(routingKey: queue, body: Array("\(index)".utf8))
                }
                let inbox = Inbox(try await connection.consume(queue: queue, prefetch: 5))
                _ = await inbox.waitFor(count: 5)
                try await Task.sleep(for: .milliseconds(500))
                #expect(inbox.messages.count == 5)
                await inbox.cancel()
                // Cancelling closed the consumer's channel: the 5 unacked messages are back in the queue.
                #expect(try await eventually { try await connection.queueInfo(queue)?.messageCount == 20 })
            }
        }
    }

    @Test("a quorum queue with a delivery limit is declared, and re-declaring it is idempotent")
    func quorumQueue() async throws {
        try await withTestConnection("quorum") { connection in
            let arguments: AMQPTable = ["x-queue-type": "quorum", "x-delivery-limit": 3]
            try await withTemporaryQueue(connection, "quorum", arguments: arguments) { queue in
                try await connection.declareQueue(queue, arguments: arguments)
                #expect(
                    try await connection.queueInfo(queue) == QueueInfo(name: queue, messageCount: 0, consumerCount: 0))
                let management = try ManagementAPI()
                #expect(try await eventually { try await management.queueType(queue) == "quorum" })
            }
        }
    }

    @Test("declaring with conflicting arguments fails with the server's text; the connection stays usable")
    func conflictingDeclare() async throws {
        try await withTestConnection("conflict") { connection in
            try await withTemporaryQueue(connection, "conflict") { queue in
                let error = await #expect(throws: BrokerError.self) {
                    try await connection.declareQueue(queue, arguments: ["x-max-length": 10])
                }
                #expect(error?.code == .channelClosed)
                #expect(error?.serverReplyCode == 406)
                #expect(error?.message.contains("PRECONDITION_FAILED") == true, "\(error?.message ?? "")")

                // The RPC channel is reopened transparently; nothing reconnected.
                try await connection.declareQueue(queue)
                try await connection.publish(routingKey: queue, body: [1])
                #expect(try await connection.queueInfo(queue)?.messageCount == 1)
                #expect(connection.isConnected)
                #expect(connection.reconnectCount == 0)
            }
        }
    }

    @Test("queueInfo of a missing queue is nil and later calls still work")
    func missingQueue() async throws {
        try await withTestConnection("missing") { connection in
            #expect(try await connection.queueInfo(TestBroker.uniqueName("does-not-exist")) == nil)
            #expect(try await connection.queueInfo(TestBroker.uniqueName("does-not-exist")) == nil)
            try await withTemporaryQueue(connection, "present") { queue in
                let info = try await connection.queueInfo(queue)
                #expect(info?.name == queue)
            }
            #expect(connection.reconnectCount == 0)
        }
    }

    @Test("basic.get returns messages in order, nil when empty, and purge counts what it removed")
    func basicGet() async throws {
        try await withTestConnection("get") { connection in
            try await withTemporaryQueue(connection, "get") { queue in
                #expect(try await connection.get(queue: queue) == nil)
                for body in ["a", "b"] {
                    try await connection.publish(routingKey: queue, body: Array(body.utf8), messageID: body)
                }
                let first = try #require(try await connection.get(queue: queue))
                #expect(first.body == Array("a".utf8))
                #expect(first.messageID == "a")
                await connection.nack(first, requeue: true)
                let second = try #require(try await connection.get(queue: queue))
                let third = try #require(try await connection.get(queue: queue))
                #expect(Set([second.body, third.body]) == [Array("a".utf8), Array("b".utf8)])
                #expect([second, third].first { $0.body == Array("a".utf8) }?.redelivered == true)
                await connection.ack(second)
                await connection.ack(third)
                #expect(try await connection.get(queue: queue) == nil)

                for _ in 0..<3 {
                    try await connection.publish(routingKey: queue, body: [0])
                }
                #expect(try await connection.purgeQueue(queue) == 3)
            }
        }
    }

    @Test("publishing to a missing exchange fails with 404 and the next publish works")
    func missingExchange() async throws {
        try await withTestConnection("exchange") { connection in
            try await withTemporaryQueue(connection, "exchange") { queue in
                let error = await #expect(throws: BrokerError.self) {
                    try await connection.publish(
                        exchange: TestBroker.uniqueName("no-exchange"), routingKey: queue, body: [1])
                }
                #expect(error?.code == .channelClosed)
                #expect(error?.serverReplyCode == 404)
                try await connection.publish(routingKey: queue, body: [2])
                #expect(try await connection.queueInfo(queue)?.messageCount == 1)
            }
        }
    }

    @Test("consuming from a missing queue fails; deleting a consumed queue ends its stream")
    func consumerQueueGone() async throws {
        try await withTestConnection("gone") { connection in
            let error = await #expect(throws: BrokerError.self) {
                _ = try await connection.consume(queue: TestBroker.uniqueName("no-queue"), prefetch: 1)
            }
            #expect(error?.serverReplyCode == 404)

            let queue = TestBroker.uniqueName("gone")
            try await connection.declareQueue(queue)
            let inbox = Inbox(try await connection.consume(queue: queue, prefetch: 1))
            try await connection.deleteQueue(queue)
            #expect(await eventually { inbox.streamEnded })
        }
    }

    @Test("after the server kills the connection it reconnects; consuming and publishing go on")
    func reconnectAfterServerClose() async throws {
        let configuration = try TestBroker.configuration("reconnect")
        let connection = BrokerConnection(configuration: configuration, logger: TestBroker.logger)
        try await connection.connect()
        try await withTemporaryQueue(connection, "reconnect") { queue in
            let inbox = Inbox(try await connection.consume(queue: queue, prefetch: 10))
            try await connection.publish(routingKey: queue, body: Array("before".utf8))
            let before = try #require(await inbox.waitFor(count: 1).first)  // deliberately not acked yet

            try await ManagementAPI().killConnection(clientConnectionName: configuration.connectionName)
            #expect(await eventually { connection.reconnectCount == 1 })
            #expect(connection.isConnected)

            // The unacked delivery died with its channel: acking it now is a no-op, and the broker
            // delivers it again to the re-subscribed consumer.
            await connection.ack(before)
            try await connection.publish(routingKey: queue, body: Array("after".utf8))
            let messages = await inbox.waitFor(count: 3)
            let redelivered = try #require(messages.dropFirst().first { $0.body == Array("before".utf8) })
            #expect(redelivered.redelivered)
            let after = try #require(messages.first { $0.body == Array("after".utf8) })
            #expect(!inbox.streamEnded)
            await connection.ack(redelivered)
            await connection.ack(after)
            await inbox.cancel()
            #expect(try await connection.queueInfo(queue)?.messageCount == 0)
            #expect(connection.reconnectCount == 1)
        }
        await connection.close()
    }

    @Test("publishes in flight when the connection dies are confirmed or fail with connectionLost, none hang")
    func publishesAcrossConnectionLoss() async throws {
        let configuration = try TestBroker.configuration("inflight")
        let connection = BrokerConnection(configuration: configuration, logger: TestBroker.logger)
        try await connection.connect()
        try await withTemporaryQueue(connection, "inflight") { queue in
            let management = try ManagementAPI()
            let name = try await management.waitForConnection(clientConnectionName: configuration.connectionName)
            let outcomes = OutcomeCounter()
            try await withThrowingDiscardingTaskGroup { group in
                for index in 0..<20_000 {
                    group.addTask {
                        do throws(BrokerError) {
                            try await connection.publish(routingKey: queue, body: Array("\(index)".utf8))
                            outcomes.record(nil)
                        } catch {
                            outcomes.record(error.code)
                        }
                    }
                    if index == 2_000 {
                        group.addTask { try await management.closeConnection(named: name) }
                    }
                }
            }
            let (confirmed, failures) = outcomes.snapshot
            print("in-flight publishes across a connection kill: \(confirmed) confirmed, failures: \(failures)")
            #expect(confirmed + failures.values.reduce(0, +) == 20_000)
            #expect(Set(failures.keys).isSubset(of: [.connectionLost]))
            // Only the unconfirmed window can be lost; everything held back is sent after the reconnect.
            #expect(failures.values.reduce(0, +) <= configuration.maxUnconfirmedPublishes)
            #expect(connection.reconnectCount == 1)
            // Every confirmed message is really in the queue (unconfirmed ones may be too).
            let stored = try #require(try await connection.queueInfo(queue)?.messageCount)
            #expect(stored >= confirmed)
        }
        await connection.close()
    }

    @Test("close() ends consume streams and later operations fail with .closed")
    func cleanClose() async throws {
        let connection = BrokerConnection(
            configuration: try TestBroker.configuration("close"), logger: TestBroker.logger)
        try await connection.connect()
        let queue = TestBroker.uniqueName("close")
        try await connection.declareQueue(queue)
        let inbox = Inbox(try await connection.consume(queue: queue, prefetch: 1))
        try await connection.publish(routingKey: queue, body: [7])
        #expect(await inbox.waitFor(count: 1).count == 1)

        await connection.close()
        #expect(await eventually(timeout: .seconds(5)) { inbox.streamEnded })
        #expect(!connection.isConnected)
        let error = await #expect(throws: BrokerError.self) {
            try await connection.publish(routingKey: queue, body: [8])
        }
        #expect(error?.code == .closed)
        await connection.close()  // idempotent

        try await withTestConnection("close-cleanup") { cleanup in
            // The unacked message went back to the queue when the connection closed.
            #expect(try await cleanup.queueInfo(queue)?.messageCount == 1)
            try await cleanup.deleteQueue(queue)
        }
    }

    @Test("bodies larger than the frame size are reassembled, by consume and by get")
    func largeBodies() async throws {
        try await withTestConnection("large") { connection in
            try await withTemporaryQueue(connection, "large") { queue in
                var generator = SystemRandomNumberGenerator()
                let body = (0..<1_000_000).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
                try await connection.publish(routingKey: queue, body: body, contentType: "application/octet-stream")
                try await connection.publish(routingKey: queue, body: body)

                let fetched = try #require(try await connection.get(queue: queue))
                #expect(fetched.body == body)
                #expect(fetched.contentType == "application/octet-stream")
                await connection.ack(fetched)

                let inbox = Inbox(try await connection.consume(queue: queue, prefetch: 1), ackingWith: connection)
                let consumed = try #require(await inbox.waitFor(count: 1).first)
                #expect(consumed.body == body)
                await inbox.cancel()
            }
        }
    }

    @Test("a dead-lettered message carries x-death as an array of tables")
    func deadLetterHeaders() async throws {
        try await withTestConnection("dlx") { connection in
            try await withTemporaryQueue(connection, "dead") { deadQueue in
                let arguments: AMQPTable = [
                    "x-dead-letter-exchange": "", "x-dead-letter-routing-key": .string(deadQueue),
                ]
                try await withTemporaryQueue(connection, "work", arguments: arguments) { workQueue in
                    try await connection.publish(routingKey: workQueue, body: [42], headers: ["attempt": 1])
                    let message = try #require(try await connection.get(queue: workQueue))
                    await connection.nack(message, requeue: false)

                    var deadLettered: IncomingMessage?
                    _ = try await eventually {
                        deadLettered = try await connection.get(queue: deadQueue)
                        return deadLettered != nil
                    }
                    let dead = try #require(deadLettered)
                    #expect(dead.body == [42])
                    #expect(dead.headers["attempt"] == 1)
                    let death = try #require(dead.headers["x-death"]?.arrayValue?.first?.tableValue)
                    #expect(death["queue"] == .string(workQueue))
                    #expect(death["reason"] == "rejected")
                    #expect(death["count"] == 1)
                    #expect(death["routing-keys"] == [.string(workQueue)])
                    if case .timestamp = death["time"] {
                    } else {
                        Issue.record("x-death time is not a timestamp: \(String(describing: death["time"]))")
                    }
                    await connection.ack(dead)
                }
            }
        }
    }

    @Test("an idle connection with a 1 s heartbeat stays up")
    func heartbeatsWhileIdle() async throws {
        var configuration = try TestBroker.configuration("heartbeat")
        configuration.heartbeatSeconds = 1
        let connection = BrokerConnection(configuration: configuration, logger: TestBroker.logger)
        try await connection.connect()
        try await Task.sleep(for: .seconds(4))
        #expect(connection.isConnected)
        #expect(connection.reconnectCount == 0)
        #expect(try await connection.queueInfo(TestBroker.uniqueName("absent")) == nil)
        await connection.close()
    }

    @Test("connecting to a closed port or with a wrong password fails with an actionable message")
    func connectionFailures() async throws {
        var closedPort = try TestBroker.configuration("refused")
        closedPort.port = 1
        let refused = BrokerConnection(configuration: closedPort, logger: TestBroker.logger)
        let refusal = await #expect(throws: BrokerError.self) { try await refused.connect() }
        #expect(refusal?.code == .connectionFailed)
        #expect(refusal?.message.contains("127.0.0.1:1") == true, "\(refusal?.message ?? "")")
        let afterFailure = await #expect(throws: BrokerError.self) { try await refused.queueInfo("x") }
        #expect(afterFailure?.code == .closed)

        var wrongPassword = try TestBroker.configuration("password")
        wrongPassword.password = "definitely-wrong-hunter2"
        let rejected = BrokerConnection(configuration: wrongPassword, logger: TestBroker.logger)
        let rejection = await #expect(throws: BrokerError.self) { try await rejected.connect() }
        #expect(rejection?.code == .connectionFailed)
        #expect(rejection?.message.contains("ACCESS_REFUSED") == true, "\(rejection?.message ?? "")")
        #expect(rejection?.description.contains("hunter2") == false)
    }
}
