import CRabbitMQ

/// The one-byte type tags of AMQP field values, as rabbitmq-c names them.
enum FieldKind {
    static let boolean = tag(AMQP_FIELD_KIND_BOOLEAN)
    static let i8 = tag(AMQP_FIELD_KIND_I8)
    static let u8 = tag(AMQP_FIELD_KIND_U8)
    static let i16 = tag(AMQP_FIELD_KIND_I16)
    static let u16 = tag(AMQP_FIELD_KIND_U16)
    static let i32 = tag(AMQP_FIELD_KIND_I32)
    static let u32 = tag(AMQP_FIELD_KIND_U32)
    static let i64 = tag(AMQP_FIELD_KIND_I64)
    static let u64 = tag(AMQP_FIELD_KIND_U64)
    static let f32 = tag(AMQP_FIELD_KIND_F32)
    static let f64 = tag(AMQP_FIELD_KIND_F64)
    static let decimal = tag(AMQP_FIELD_KIND_DECIMAL)
    static let utf8 = tag(AMQP_FIELD_KIND_UTF8)
    static let array = tag(AMQP_FIELD_KIND_ARRAY)
    static let timestamp = tag(AMQP_FIELD_KIND_TIMESTAMP)
    static let table = tag(AMQP_FIELD_KIND_TABLE)
    static let void = tag(AMQP_FIELD_KIND_VOID)
    static let bytes = tag(AMQP_FIELD_KIND_BYTES)

    private static func tag(_ kind: amqp_field_value_kind_t) -> UInt8 {
        UInt8(kind.rawValue)
    }
}

// Decoding copies everything out of rabbitmq-c's pools: the C memory is recycled by
// amqp_maybe_release_buffers soon after a frame has been handled.

extension AMQPFieldValue {
    init(decoding field: amqp_field_value_t) {
        let value = field.value
        switch field.kind {
        case FieldKind.boolean: self = .bool(value.boolean != 0)
        case FieldKind.i8: self = .int(Int64(value.i8))
        case FieldKind.u8: self = .int(Int64(value.u8))
        case FieldKind.i16: self = .int(Int64(value.i16))
        case FieldKind.u16: self = .int(Int64(value.u16))
        case FieldKind.i32: self = .int(Int64(value.i32))
        case FieldKind.u32: self = .int(Int64(value.u32))
        case FieldKind.i64: self = .int(value.i64)
        case FieldKind.u64: self = .int(Int64(clamping: value.u64))
        case FieldKind.f32: self = .double(Double(value.f32))
        case FieldKind.f64: self = .double(value.f64)
        case FieldKind.decimal:
            var scale = 1.0
            for _ in 0..<value.decimal.decimals {
                scale *= 10
            }
            self = .double(Double(value.decimal.value) / scale)
        case FieldKind.utf8:
            // AMQP long strings are really byte strings; keep non-UTF-8 content instead of mangling it.
            let data = value.bytes.copiedBytes
            if let string = String(validating: data, as: UTF8.self) {
                self = .string(string)
            } else {
                self = .bytes(data)
            }
        case FieldKind.bytes: self = .bytes(value.bytes.copiedBytes)
        case FieldKind.array: self = .array(value.array.decoded)
        case FieldKind.table: self = .table(value.table.decoded)
        case FieldKind.timestamp: self = .timestamp(value.u64)
        default: self = .void
        }
    }
}

extension amqp_table_t {
    /// The table as Swift values (x-death arrives as an array of tables and decodes like any other).
    var decoded: AMQPTable {
        guard num_entries > 0, let entries else {
            return [:]
        }
        var table = AMQPTable(minimumCapacity: Int(num_entries))
        for entry in UnsafeBufferPointer(start: entries, count: Int(num_entries)) {
            table[entry.key.copiedString] = AMQPFieldValue(decoding: entry.value)
        }
        return table
    }
}

extension amqp_array_t {
    var decoded: [AMQPFieldValue] {
        guard num_entries > 0, let entries else {
            return []
        }
        return UnsafeBufferPointer(start: entries, count: Int(num_entries)).map(AMQPFieldValue.init(decoding:))
    }
}

extension amqp_bytes_t {
    /// A Swift copy of the bytes.
    var copiedBytes: [UInt8] {
        guard len > 0, let bytes else {
            return []
        }
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }

    /// A Swift copy of the bytes as text (invalid UTF-8 is repaired, which is fine for names and reply texts).
    var copiedString: String {
        guard len > 0, let bytes else {
            return ""
        }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: len), as: UTF8.self)
    }
}
