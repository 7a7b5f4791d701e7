import CRabbitMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The single owner of one rabbitmq-c connection state; `deinit` destroys it, which closes the socket.
///
/// rabbitmq-c is blocking and not thread-safe, so a handle is created, used and released on its
/// connection thread only (it is deliberately not `Sendable`).
final class AMQPConnectionHandle {
    let state: amqp_connection_state_t

    private init(state: amqp_connection_state_t) {
        self.state = state
    }

    deinit {
        amqp_destroy_connection(state)
    }

    /// The socket's file descriptor, for `poll(2)`; -1 when the socket is gone.
    var socketDescriptor: Int32 {
        amqp_get_sockfd(state)
    }

    /// Highest channel number the broker allows on this connection.
    var channelMax: UInt16 {
        let negotiated = amqp_get_channel_max(state)
        return negotiated <= 0 ? UInt16.max : UInt16(clamping: negotiated)
    }

    /// Opens TCP, does the AMQP handshake and logs in, all within `connectTimeoutSeconds`.
    static func open(_ configuration: BrokerConfiguration) throws(BrokerError) -> AMQPConnectionHandle {
        guard let state = amqp_new_connection() else {
            throw .connectionFailed("rabbitmq-c could not allocate a connection: out of memory")
        }
        // From here on the handle owns `state`: every early exit destroys it.
        let handle = AMQPConnectionHandle(state: state)
        let target = "\(configuration.host):\(configuration.port)"

        guard let socket = amqp_tcp_socket_new(state) else {
            throw .connectionFailed("rabbitmq-c could not create a TCP socket for \(target)")
        }
        var connectTimeout = timeval(seconds: configuration.connectTimeoutSeconds)
        let openStatus = configuration.host.withCString { host in
            amqp_socket_open_noblock(socket, host, Int32(configuration.port), &connectTimeout)
        }
        guard openStatus == AMQPStatus.ok else {
            // rabbitmq-c does not keep the socket's errno (it is left at EINPROGRESS), so say what it usually means.
            throw .connectionFailed(
                "cannot connect to RabbitMQ at \(target): \(AMQPStatus.describe(openStatus)) (refused, unreachable or "
                    + "timed out after \(configuration.connectTimeoutSeconds) s); is the broker running "
                    + "(deploy/local/stack up) and INTELLIDOCS_AMQP_URL right?")
        }

        var rpcTimeout = timeval(seconds: configuration.rpcTimeoutSeconds)
        guard amqp_set_handshake_timeout(state, &connectTimeout) == AMQPStatus.ok,
            amqp_set_rpc_timeout(state, &rpcTimeout) == AMQPStatus.ok
        else {
            throw .connectionFailed("rabbitmq-c rejected the configured timeouts")
        }

        // rabbitmq-c 0.11 advertises only authentication_failure_close; without consumer_cancel_notify the
        // broker would silently drop a consumer whose queue is deleted, leaving its stream hanging.
        let clientProperties: AMQPTable = [
            "connection_name": .string(configuration.connectionName),
            "capabilities": ["consumer_cancel_notify": true, "connection.blocked": true],
        ]
        let reply = withScratchPool { pool in
            var properties = pool.table(clientProperties)
            return configuration.virtualHost.withCString { vhost in
                configuration.user.withCString { user in
                    configuration.password.withCString { password in
                        intellidocs_amqp_login_plain_with_properties(
                            state, vhost, 0, 131_072, Int32(configuration.heartbeatSeconds), &properties, user,
                            password)
                    }
                }
            }
        }
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            throw .connectionFailed(
                "login to RabbitMQ at \(target), vhost '\(configuration.virtualHost)' as user '\(configuration.user)' "
                    + "failed: \(describeLoginFailure(reply)); check user, password and vhost in INTELLIDOCS_AMQP_URL")
        }
        return handle
    }

    private static func describeLoginFailure(_ reply: amqp_rpc_reply_t) -> String {
        switch reply.reply_type {
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == INTELLIDOCS_AMQP_CONNECTION_CLOSE_METHOD, let decoded = reply.reply.decoded {
                let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                return "the broker refused: \(close.reply_text.copiedString)"
            }
            return "the broker answered with method \(reply.reply.id)"
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            // RabbitMQ drops the socket on bad credentials unless the client asked otherwise.
            return AMQPStatus.describe(reply.library_error)
        default:
            return "the broker closed the socket"
        }
    }
}

/// rabbitmq-c status codes as plain integers (the C enum imports as a struct).
enum AMQPStatus {
    static let ok = AMQP_STATUS_OK.rawValue
    static let timeout = AMQP_STATUS_TIMEOUT.rawValue

    static func describe(_ status: Int32) -> String {
        String(cString: amqp_error_string2(status))
    }
}

extension timeval {
    init(seconds: Double) {
        let whole = seconds.rounded(.down)
        self.init(tv_sec: .init(whole), tv_usec: .init((seconds - whole) * 1_000_000))
    }
}
