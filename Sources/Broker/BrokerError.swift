/// The one error type of the `Broker` module.
///
/// `description` is safe to log: it never contains a password or a message body. Server reply texts (for
/// example `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' …`) are kept because they name the
/// queue and argument that needs fixing. `debugDescription` adds where the error was created.
public struct BrokerError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// What kind of failure happened; compare with `==` (`error.code == .channelClosed`).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidURL, connectionFailed, connectionLost, channelClosed, publishNacked, timeout, closed
            case invalidArgument
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// The broker URL could not be parsed.
        public static let invalidURL = Code(.invalidURL)
        /// The first connection (TCP, AMQP handshake or login) could not be established.
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection dropped while the operation was in flight; the connection reconnects by itself,
        /// so the caller may retry (a publish that failed this way may or may not have reached the queue).
        public static let connectionLost = Code(.connectionLost)
        /// The server closed the channel the operation ran on (`serverReplyCode` and the message say why,
        /// e.g. 404 NOT_FOUND or 406 PRECONDITION_FAILED). The connection stays usable.
        public static let channelClosed = Code(.channelClosed)
        /// The broker answered a publish with basic.nack: it did not take responsibility for the message.
        public static let publishNacked = Code(.publishNacked)
        /// The broker did not answer in time, or the connection stayed down longer than the command timeout.
        public static let timeout = Code(.timeout)
        /// The connection was closed with `close()` (or never connected).
        public static let closed = Code(.closed)
        /// A caller-supplied value cannot be sent over AMQP (for example a name longer than 255 bytes).
        public static let invalidArgument = Code(.invalidArgument)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// What happened and, where possible, what to do about it.
    public var message: String
    /// The AMQP reply code sent by the server with channel.close / connection.close (404, 406, 320, …).
    public var serverReplyCode: Int?
    /// Where the error was created (`#fileID`), for `debugDescription`.
    public var file: String
    public var line: Int

    init(code: Code, message: String, serverReplyCode: Int? = nil, file: String, line: Int) {
        self.code = code
        self.message = message
        self.serverReplyCode = serverReplyCode
        self.file = file
        self.line = line
    }

    public var description: String {
        "BrokerError.\(code): \(message)"
    }

    public var debugDescription: String {
        var text = "BrokerError(code: \(code), message: \(message)"
        if let serverReplyCode {
            text += ", serverReplyCode: \(serverReplyCode)"
        }
        return text + ", at: \(file):\(line))"
    }
}

// MARK: - Factories (record where the error was made)

extension BrokerError {
    static func invalidURL(_ message: String, file: String = #fileID, line: Int = #line) -> BrokerError {
        BrokerError(code: .invalidURL, message: message, file: file, line: line)
    }

    static func connectionFailed(_ message: String, file: String = #fileID, line: Int = #line) -> BrokerError {
        BrokerError(code: .connectionFailed, message: message, file: file, line: line)
    }

    static func connectionLost(
        _ message: String, serverReplyCode: Int? = nil, file: String = #fileID, line: Int = #line
    ) -> BrokerError {
        BrokerError(code: .connectionLost, message: message, serverReplyCode: serverReplyCode, file: file, line: line)
    }

    static func channelClosed(
        _ message: String, serverReplyCode: Int?, file: String = #fileID, line: Int = #line
    ) -> BrokerError {
        BrokerError(code: .channelClosed, message: message, serverReplyCode: serverReplyCode, file: file, line: line)
    }

    static func publishNacked(_ message: String, file: String = #fileID, line: Int = #line) -> BrokerError {
        BrokerError(code: .publishNacked, message: message, file: file, line: line)
    }

    static func timeout(_ message: String, file: String = #fileID, line: Int = #line) -> BrokerError {
        BrokerError(code: .timeout, message: message, file: file, line: line)
    }

    static func closed(_ message: String, file: String = #fileID, line: Int = #line) -> BrokerError {
        BrokerError(code: .closed, message: message, file: file, line: line)
    }

    static func invalidArgument(_ message: String, file: String = #fileID, line: Int = #line) -> BrokerError {
        BrokerError(code: .invalidArgument, message: message, file: file, line: line)
    }
}
