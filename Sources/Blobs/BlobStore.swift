public import Foundation
import Crypto

/// Where original documents live, addressed by the SHA-256 of their bytes.
///
/// Content addressing makes `put` idempotent (a re-import or a retried upload writes nothing new) and lets
/// documents of different organisations share bytes without sharing rows. An S3-backed store can implement
/// the same protocol.
public protocol BlobStore: Sendable {
    /// Stores `bytes` and returns their key (lower-case hex SHA-256).
    func put(_ bytes: [UInt8]) async throws(BlobError) -> BlobKey
    /// Streams the file at `path` into the store without holding it in memory.
    func put(fileAt path: String) async throws(BlobError) -> BlobKey
    func get(_ key: BlobKey) async throws(BlobError) -> [UInt8]
    func contains(_ key: BlobKey) async -> Bool
    func delete(_ key: BlobKey) async throws(BlobError)
}

/// A SHA-256 hex digest naming a blob.
public struct BlobKey: Sendable, Hashable, CustomStringConvertible {
    public let hex: String

    public init?(hex: String) {
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        self.hex = hex
    }

    public static func of(_ bytes: some DataProtocol) -> BlobKey {
        BlobKey(unchecked: SHA256.hash(data: bytes).hexString)
    }

    init(unchecked hex: String) { self.hex = hex }
    public var description: String { hex }
}

public struct BlobError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable { case notFound, io, unreadableSource }
    public let code: Code
    public let message: String
    public var description: String { message }
}

/// The filesystem store: `<root>/ab/cd/abcd…` with atomic writes (temporary file + rename), so a process
/// killed mid-write never leaves a truncated blob under a valid key.
public struct FileBlobStore: BlobStore {
    public let root: String

    public init(root: String) throws(BlobError) {
        self.root = root
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw BlobError(code: .io, message: "cannot create the blob folder \(root) (\(error.localizedDescription)); check INTELLIDOCS_BLOB_DIR")
        }
    }

    public func path(for key: BlobKey) -> String {
        let hex = key.hex
        return "\(root)/\(hex.prefix(2))/\(hex.dropFirst(2).prefix(2))/\(hex)"
    }

    public func put(_ bytes: [UInt8]) async throws(BlobError) -> BlobKey {
        let key = BlobKey.of(bytes)
        let target = path(for: key)
        if FileManager.default.fileExists(atPath: target) { return key }
        try write(Data(bytes), to: target)
        return key
    }

    public func put(fileAt sourcePath: String) async throws(BlobError) -> BlobKey {
        guard let handle = FileHandle(forReadingAtPath: sourcePath) else {
            throw BlobError(code: .unreadableSource, message: "cannot read \(sourcePath): check that it exists and is readable")
        }
        defer { try? handle.close() }
        let temporary = "\(root)/.incoming-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
            let output = FileHandle(forWritingAtPath: temporary)
        else {
            throw BlobError(code: .io, message: "cannot write into the blob folder \(root); check its permissions and free space")
        }
        var hasher = SHA256()
        do {
            defer { try? output.close() }
            while true {
                let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
                if chunk.isEmpty { break }
                hasher.update(data: chunk)
                try output.write(contentsOf: chunk)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw BlobError(code: .unreadableSource, message: "reading \(sourcePath) failed: \(error.localizedDescription)")
        }
        let key = BlobKey(unchecked: hasher.finalize().hexString)
        try moveIntoPlace(temporary, key: key)
        return key
    }

    /// Takes over a file already inside `root` (an upload streamed to `incomingFolder()`) whose SHA-256
    /// the caller computed while writing it: renamed into place, or removed when the blob exists.
    public func adopt(_ file: String, key: BlobKey) throws(BlobError) {
        if FileManager.default.fileExists(atPath: path(for: key)) {
            try? FileManager.default.removeItem(atPath: file)
            return
        }
        try moveIntoPlace(file, key: key)
    }

    /// A fresh folder inside `root` for files on their way in (same filesystem, so `adopt` is a rename).
    public func incomingFolder() -> String { "\(root)/.incoming" }

    public func get(_ key: BlobKey) async throws(BlobError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path(for: key)) else {
            throw BlobError(code: .notFound, message: "blob \(key) is missing from \(root); re-import the document")
        }
        return [UInt8](data)
    }

    public func contains(_ key: BlobKey) async -> Bool {
        FileManager.default.fileExists(atPath: path(for: key))
    }

    public func delete(_ key: BlobKey) async throws(BlobError) {
        do {
            try FileManager.default.removeItem(atPath: path(for: key))
        } catch {
            if FileManager.default.fileExists(atPath: path(for: key)) {
                throw BlobError(code: .io, message: "cannot delete blob \(key): \(error.localizedDescription)")
            }
        }
    }

    private func write(_ data: Data, to target: String) throws(BlobError) {
        let temporary = "\(root)/.incoming-\(UUID().uuidString)"
        do {
            try data.write(to: URL(fileURLWithPath: temporary))
        } catch {
            throw BlobError(code: .io, message: "cannot write into the blob folder \(root) (\(error.localizedDescription)); check its permissions and free space")
        }
        try moveIntoPlace(temporary, key: BlobKey.of(data))
    }

    private func moveIntoPlace(_ temporary: String, key: BlobKey) throws(BlobError) {
        let target = path(for: key)
        let folder = (target as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            if rename(temporary, target) != 0 {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw BlobError(code: .io, message: "cannot store blob \(key) in \(root): \(error.localizedDescription)")
        }
    }
}

extension Digest {
    var hexString: String {
        var text = ""
        text.reserveCapacity(Self.byteCount * 2)
        for byte in self {
            let hex = String(byte, radix: 16)
            if hex.count == 1 { text += "0" }
            text += hex
        }
        return text
    }
}
