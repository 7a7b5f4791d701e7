/// A message received from a queue (by `consume` or `get`), to be settled with `ack` or `nack`.
public struct IncomingMessage: Sendable {
    public let body: [UInt8]
    public let headers: AMQPTable
    /// True when the broker delivered this message before (to this or another consumer) without an ack.
    public let redelivered: Bool
    public let routingKey: String
    public let exchange: String
    public let messageID: String?
    public let contentType: String?
    /// Which channel session delivered the message; only that session can ack it.
    let delivery: DeliveryIdentity

    /// The broker's delivery tag (unique per channel; useful in logs).
    public var deliveryTag: UInt64 { delivery.deliveryTag }
}

/// Identifies one delivery: the delivery tag is only meaningful on the channel session that produced it.
///
/// Every channel the connection opens gets a new `session` number (never reused, also across reconnects),
/// so an ack for a message from a channel that has since closed, or from before a reconnect, is recognised
/// as stale and dropped instead of acking an unrelated message that reused the same tag.
/// `connection` guards against acking a message on a different `BrokerConnection` than the one that
/// received it, where the same session and tag could name an unrelated delivery.
struct DeliveryIdentity: Sendable, Hashable {
    let connection: ObjectIdentifier
    let session: UInt64
    let channel: UInt16
    let deliveryTag: UInt64
}

/// Result of a passive queue declare.
public struct QueueInfo: Sendable, Equatable {
    public let name: String
    /// Messages ready for delivery (not counting unacked ones).
    public let messageCount: Int
    public let consumerCount: Int

    public init(name: String, messageCount: Int, consumerCount: Int) {
        self.name = name
        self.messageCount = messageCount
        self.consumerCount = consumerCount
    }
}
