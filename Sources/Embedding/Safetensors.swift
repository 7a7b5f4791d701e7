import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A whole file mapped read-only into memory: the one owner of the mapping, unmapped in `deinit`.
///
/// Mapping instead of reading keeps the weights in the page cache, shared by every worker process on the
/// machine, and only the pages that are used become resident (most rows of the 47 MB word-embedding table
/// are never touched by a given corpus).
final class MappedFile: @unchecked Sendable {
    // @unchecked Sendable: the mapping is read-only (PROT_READ) and never changes after `init`; `deinit`
    // runs only when no reference, and so no reader, is left.
    let path: String
    let size: Int
    private let base: UnsafeRawPointer

    init(path: String) throws(EmbeddingError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT {
                throw .modelNotFound(path)
            }
            throw .invalidModel(path, "cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw .invalidModel(path, "cannot stat (\(String(cString: strerror(errno))))")
        }
        let size = Int(status.st_size)
        guard size > 0 else { throw .invalidModel(path, "the file is empty") }
        guard let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), mapping != MAP_FAILED else {
            throw .invalidModel(path, "cannot map into memory (\(String(cString: strerror(errno))))")
        }
        self.path = path
        self.size = size
        self.base = UnsafeRawPointer(mapping)
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), size)
    }

    /// The bytes `range` of the file. The caller keeps `self` alive while it uses them.
    func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= size, "range outside the mapped file")
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }
}

/// A read-only float32 tensor inside a mapped safetensors file. It keeps the mapping alive, so the pointer
/// stays valid for as long as the tensor exists.
struct Tensor: @unchecked Sendable {
    // @unchecked Sendable: points into a read-only mapping owned (and kept alive) by `file`.
    let name: String
    let shape: [Int]
    let pointer: UnsafePointer<Float>
    private let file: MappedFile

    init(name: String, shape: [Int], pointer: UnsafePointer<Float>, file: MappedFile) {
        self.name = name
        self.shape = shape
        self.pointer = pointer
        self.file = file
    }

    var count: Int { shape.reduce(1, *) }
}

/// A `.safetensors` file: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
/// shape and byte range, then the raw data. The header is checked in full when the file is opened: every
/// range inside the data, sized as dtype × shape, without overlaps.
struct SafetensorsFile: Sendable {
    struct Entry: Sendable {
        var dtype: String
        var shape: [Int]
        /// Byte range in the file (header included).
        var range: Range<Int>
    }

    private static let dtypeSizes: [String: Int] = [
        "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
        "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
    ]

    let file: MappedFile
    let entries: [String: Entry]

    init(path: String) throws(EmbeddingError) {
        let file = try MappedFile(path: path)
        guard file.size >= 8 else { throw .invalidModel(path, "shorter than a safetensors header") }
        let headerLength = file.bytes(0..<8).loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength >= 2, headerLength <= UInt64(file.size - 8), headerLength <= 100_000_000 else {
            throw .invalidModel(path, "header length \(headerLength) does not fit a \(file.size)-byte file")
        }
        let dataStart = 8 + Int(headerLength)
        let header: [String: Any]
        do {
            let object = try JSONSerialization.jsonObject(with: Data(file.bytes(8..<dataStart)))
            guard let dictionary = object as? [String: Any] else {
                throw EmbeddingError.invalidModel(path, "the header is not a JSON object")
            }
            header = dictionary
        } catch let error as EmbeddingError {
            throw error
        } catch {
            throw .invalidModel(path, "the header is not valid JSON")
        }
        var entries: [String: Entry] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let fields = value as? [String: Any], let dtype = fields["dtype"] as? String,
                let shape = fields["shape"] as? [Int], let offsets = fields["data_offsets"] as? [Int],
                offsets.count == 2
            else {
                throw .invalidModel(path, "header entry \(name) lacks dtype, shape or data_offsets")
            }
            guard let elementSize = Self.dtypeSizes[dtype] else {
                throw .invalidModel(path, "tensor \(name) has unknown dtype \(dtype)")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard shape.allSatisfy({ $0 >= 0 }), begin >= 0, begin <= end, end <= file.size - dataStart else {
                throw .invalidModel(path, "tensor \(name) lies outside the file")
            }
            let (count, overflow) = shape.reduce((1, false)) { partial, dimension in
                let product = partial.0.multipliedReportingOverflow(by: dimension)
                return (product.partialValue, partial.1 || product.overflow)
            }
            guard !overflow, count * elementSize == end - begin else {
                throw .invalidModel(path, "tensor \(name) has \(end - begin) bytes, not \(shape) × \(elementSize)")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: (dataStart + begin)..<(dataStart + end))
        }
        let ranges = entries.values.map(\.range).filter { !$0.isEmpty }.sorted { $0.lowerBound < $1.lowerBound }
        for (earlier, later) in zip(ranges, ranges.dropFirst()) where earlier.upperBound > later.lowerBound {
            throw .invalidModel(path, "tensors overlap at byte \(later.lowerBound)")
        }
        self.file = file
        self.entries = entries
    }

    /// The float32 tensor `name`, which must have exactly `shape` (from `config.json`).
    func floatTensor(_ name: String, shape: [Int]) throws(EmbeddingError) -> Tensor {
        guard let entry = entries[name] else {
            throw .invalidModel(file.path, "tensor \(name) is missing")
        }
        guard entry.dtype == "F32" else {
            throw .invalidModel(file.path, "tensor \(name) is \(entry.dtype), expected F32")
        }
        guard entry.shape == shape else {
            throw .invalidModel(file.path, "tensor \(name) has shape \(entry.shape), config.json implies \(shape)")
        }
        let bytes = file.bytes(entry.range)
        guard let start = bytes.baseAddress, Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0 else {
            throw .invalidModel(file.path, "tensor \(name) is not aligned for float32")
        }
        let floats = start.bindMemory(to: Float.self, capacity: bytes.count / MemoryLayout<Float>.stride)
        return Tensor(name: name, shape: shape, pointer: floats, file: file)
    }
}
