import CRabbitMQ

/// Temporary C memory for arguments of one rabbitmq-c call.
///
/// Swift strings and tables are copied into an `amqp_pool_t` that lives exactly as long as the closure
/// passed to `withScratchPool`, so no pointer into Swift-managed storage (the trap of `amqp_cstring_bytes`
/// on a temporary C string) and no C allocation can outlive the call that uses it.
struct ScratchPool {
    private let pool: UnsafeMutablePointer<amqp_pool_t>

    fileprivate init(pool: UnsafeMutablePointer<amqp_pool_t>) {
        self.pool = pool
    }

    /// The string's UTF-8 bytes, copied into the pool.
    func bytes(_ string: String) -> amqp_bytes_t {
        bytes(Array(string.utf8))
    }

    /// A copy of `data` in the pool (`{0, NULL}` when empty).
    func bytes(_ data: [UInt8]) -> amqp_bytes_t {
        guard !data.isEmpty else {
            return amqp_bytes_t(len: 0, bytes: nil)
        }
        let memory = allocate(byteCount: data.count, alignment: 1)
        data.withUnsafeBytes { source in
            memory.copyMemory(from: source.baseAddress!, byteCount: source.count)
        }
        return amqp_bytes_t(len: data.count, bytes: memory)
    }

    /// The table encoded as rabbitmq-c structures whose strings and entries all live in the pool.
    /// Keys are sorted so equal tables always encode identically (RabbitMQ compares queue arguments).
    func table(_ table: AMQPTable) -> amqp_table_t {
        guard !table.isEmpty else {
            return amqp_table_t(num_entries: 0, entries: nil)
        }
        let entries = allocate(amqp_table_entry_t.self, count: table.count)
        for (index, (key, value)) in table.sorted(by: { $0.key < $1.key }).enumerated() {
            (entries + index).initialize(to: amqp_table_entry_t(key: bytes(key), value: field(value)))
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    func field(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .string(let string):
            field.kind = FieldKind.utf8
            field.value.bytes = bytes(string)
        case .int(let int):
            field.kind = FieldKind.i64
            field.value.i64 = int
        case .bool(let bool):
            field.kind = FieldKind.boolean
            field.value.boolean = bool ? 1 : 0
        case .double(let double):
            field.kind = FieldKind.f64
            field.value.f64 = double
        case .array(let elements):
            field.kind = FieldKind.array
            field.value.array = array(elements)
        case .table(let nested):
            field.kind = FieldKind.table
            field.value.table = table(nested)
        case .timestamp(let seconds):
            field.kind = FieldKind.timestamp
            field.value.u64 = seconds
        case .bytes(let data):
            field.kind = FieldKind.bytes
            field.value.bytes = bytes(data)
        case .void:
            field.kind = FieldKind.void
        }
        return field
    }

    private func array(_ elements: [AMQPFieldValue]) -> amqp_array_t {
        guard !elements.isEmpty else {
            return amqp_array_t(num_entries: 0, entries: nil)
        }
        let entries = allocate(amqp_field_value_t.self, count: elements.count)
        for (index, element) in elements.enumerated() {
            (entries + index).initialize(to: field(element))
        }
        return amqp_array_t(num_entries: Int32(elements.count), entries: entries)
    }

    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        allocate(byteCount: MemoryLayout<T>.stride * count, alignment: MemoryLayout<T>.alignment)
            .bindMemory(to: T.self, capacity: count)
    }

    private func allocate(byteCount: Int, alignment: Int) -> UnsafeMutableRawPointer {
        // amqp_pool_alloc aligns every block to 8 bytes, enough for every rabbitmq-c structure.
        precondition(alignment <= 8, "amqp_pool_alloc only guarantees 8-byte alignment")
        guard let memory = amqp_pool_alloc(pool, byteCount) else {
            fatalError("rabbitmq-c pool allocation of \(byteCount) bytes failed: out of memory")
        }
        return memory
    }
}

/// Runs `body` with a fresh pool and empties the pool when it returns.
func withScratchPool<Result, Failure: Error>(
    _ body: (ScratchPool) throws(Failure) -> Result
) throws(Failure) -> Result {
    let pool = UnsafeMutablePointer<amqp_pool_t>.allocate(capacity: 1)
    init_amqp_pool(pool, 4096)
    defer {
        empty_amqp_pool(pool)
        pool.deallocate()
    }
    return try body(ScratchPool(pool: pool))
}
