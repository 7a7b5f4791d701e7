/// Where and how a `BrokerConnection` connects.
///
/// Usually built from the `INTELLIDOCS_AMQP_URL` setting with `init(url:)`. `description` hides the password.
public struct BrokerConfiguration: Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    /// The RabbitMQ virtual host, already percent-decoded ("/" is the default vhost).
    public var virtualHost: String
    /// Heartbeat interval proposed to the broker; 0 disables heartbeats. Default 30 s: a dead peer is
    /// noticed after about two missed intervals.
    public var heartbeatSeconds: Int
    /// Sent as the `connection_name` client property, so the management UI shows which process owns which
    /// connection (and tests can find and kill theirs).
    public var connectionName: String
    /// Limit for TCP connect plus the AMQP handshake and login. Default 10 s.
    public var connectTimeoutSeconds: Double
    /// Limit for one synchronous broker round trip (queue.declare, basic.get, …); on expiry the operation
    /// fails with `.timeout` and the connection is re-established, because a late reply would otherwise be
    /// taken as the answer to the next request. Default 30 s.
    public var rpcTimeoutSeconds: Double
    /// How long an operation issued while the connection is down waits for the reconnect before it fails
    /// with `.timeout`. Default 30 s.
    public var commandTimeoutSeconds: Double
    /// Most publishes written but not yet confirmed; further publishes wait (in order) until confirms
    /// arrive. Bounds what a connection drop can leave in doubt and what sits in socket buffers.
    /// Default 1000.
    public var maxUnconfirmedPublishes: Int

    public init(
        host: String = "127.0.0.1",
        port: Int = 5672,
        user: String = "guest",
        password: String = "guest",
        virtualHost: String = "/",
        heartbeatSeconds: Int = 30,
        connectionName: String = BrokerConfiguration.defaultConnectionName
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.virtualHost = virtualHost
        self.heartbeatSeconds = heartbeatSeconds
        self.connectionName = connectionName
        self.connectTimeoutSeconds = 10
        self.rpcTimeoutSeconds = 30
        self.commandTimeoutSeconds = 30
        self.maxUnconfirmedPublishes = 1000
    }

    /// "intellidocs" plus the process id, so two processes on one machine are told apart in the management UI.
    public static var defaultConnectionName: String {
        "intellidocs-\(ProcessIdentity.current)"
    }

    /// The configuration as a URL with the password replaced by `***`, safe to log.
    public var redactedURL: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "amqp://\(PercentEncoding.encode(user)):***@\(hostPart):\(port)/\(PercentEncoding.encode(virtualHost))"
    }

    public var description: String {
        "BrokerConfiguration(\(redactedURL), heartbeat: \(heartbeatSeconds)s, connectionName: \(connectionName))"
    }
}
