/// One value of an AMQP field table (message headers, queue arguments).
///
/// Integers of every width arrive as `.int`, floats as `.double` and decimals as `.double`, so callers
/// never care which width the sender picked. `.int` is sent as a signed 64-bit "long", which RabbitMQ
/// accepts wherever it expects a number (`x-delivery-limit`, `x-max-length`, …).
public enum AMQPFieldValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case double(Double)
    case array([AMQPFieldValue])
    case table([String: AMQPFieldValue])
    /// Seconds since 1970 (AMQP timestamps have second precision).
    case timestamp(UInt64)
    case bytes([UInt8])
    case void
}

/// A field table: header name → value.
public typealias AMQPTable = [String: AMQPFieldValue]

extension AMQPFieldValue {
    public var stringValue: String? {
        if case .string(let value) = self { value } else { nil }
    }

    public var intValue: Int64? {
        if case .int(let value) = self { value } else { nil }
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { value } else { nil }
    }

    public var doubleValue: Double? {
        if case .double(let value) = self { value } else { nil }
    }

    public var arrayValue: [AMQPFieldValue]? {
        if case .array(let value) = self { value } else { nil }
    }

    public var tableValue: AMQPTable? {
        if case .table(let value) = self { value } else { nil }
    }
}

// Literals keep queue arguments and headers readable: `["x-queue-type": "quorum", "x-delivery-limit": 5]`.
extension AMQPFieldValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) {
        self = .string(value)
    }

    public init(integerLiteral value: Int64) {
        self = .int(value)
    }

    public init(booleanLiteral value: Bool) {
        self = .bool(value)
    }

    public init(floatLiteral value: Double) {
        self = .double(value)
    }

    public init(arrayLiteral elements: AMQPFieldValue...) {
        self = .array(elements)
    }

    public init(dictionaryLiteral elements: (String, AMQPFieldValue)...) {
        self = .table(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
