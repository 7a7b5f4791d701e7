import Foundation
import ZIPFoundation

/// One thing an import may turn into a document.
enum SourceItem: Sendable {
    /// A file on disk; `relativePath` becomes the external id.
    case file(path: String, relativePath: String)
    /// A member of a `.zip` archive.
    case zipEntry(archive: String, entry: String, relativePath: String)
}

/// A file that was not imported, and why (`import --report`).
public struct SkippedFile: Sendable, Equatable {
    public let path: String
    public let reason: String
}

/// Walks the paths given to `import`: folders recursively (sorted, so runs are repeatable), `.zip`
/// archives by their members, single files as they are.
struct SourceWalker {
    var skipped: [SkippedFile] = []

    mutating func items(for paths: [String]) -> [SourceItem] {
        var items: [SourceItem] = []
        let fileManager = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: path, isDirectory: &isDirectory) else {
                skipped.append(SkippedFile(path: path, reason: "no such file or folder"))
                continue
            }
            if isDirectory.boolValue {
                let root = URL(fileURLWithPath: path).standardizedFileURL.path
                guard let enumerator = fileManager.enumerator(atPath: root) else {
                    skipped.append(SkippedFile(path: path, reason: "the folder cannot be read; check its permissions"))
                    continue
                }
                var relatives: [String] = []
                while let relative = enumerator.nextObject() as? String {
                    let full = root + "/" + relative
                    var childIsDirectory: ObjCBool = false
                    guard fileManager.fileExists(atPath: full, isDirectory: &childIsDirectory), !childIsDirectory.boolValue else { continue }
                    relatives.append(relative)
                }
                for relative in relatives.sorted() {
                    let name = (relative as NSString).lastPathComponent
                    if name.hasPrefix(".") || relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                        skipped.append(SkippedFile(path: root + "/" + relative, reason: "hidden file, not imported"))
                        continue
                    }
                    append(path: root + "/" + relative, relative: relative, to: &items)
                }
            } else {
                append(path: path, relative: (path as NSString).lastPathComponent, to: &items)
            }
        }
        return items
    }

    private mutating func append(path: String, relative: String, to items: inout [SourceItem]) {
        guard path.lowercased().hasSuffix(".zip") else {
            items.append(.file(path: path, relativePath: relative))
            return
        }
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            skipped.append(SkippedFile(path: path, reason: "not a readable .zip archive (\(error)); check the file"))
            return
        }
        var entries: [String] = []
        for entry in archive where entry.type == .file {
            let name = (entry.path as NSString).lastPathComponent
            if name.hasPrefix(".") || entry.path.hasPrefix("__MACOSX/") { continue }
            let parts = entry.path.split(separator: "/", omittingEmptySubsequences: false)
            if entry.path.hasPrefix("/") || parts.contains("..") || entry.path.contains("\\") {
                skipped.append(SkippedFile(
                    path: "\(path)!\(entry.path)", reason: "unsafe path in the archive (absolute or with '..'); not imported"))
                continue
            }
            entries.append(entry.path)
        }
        for entry in entries.sorted() {
            items.append(.zipEntry(archive: path, entry: entry, relativePath: relative + "/" + entry))
        }
    }
}

/// Reads a zip member with limits, so a zip bomb fails that member instead of filling memory.
enum ZipReader {
    static func read(archive path: String, entry name: String, maxBytes: Int) throws -> [UInt8] {
        let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        guard let entry = archive[name] else {
            throw ImportError(message: "member \(name) vanished from \(path)")
        }
        if entry.uncompressedSize > UInt64(maxBytes) {
            throw ImportError(message: "member is \(entry.uncompressedSize) bytes uncompressed, over the \(maxBytes)-byte limit")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(entry.uncompressedSize))
        _ = try archive.extract(entry, skipCRC32: false) { data in
            bytes.append(contentsOf: data)
            if bytes.count > maxBytes {
                throw ImportError(message: "member expands past the \(maxBytes)-byte limit (a zip bomb?)")
            }
        }
        return bytes
    }
}

/// The import itself could not go on (bad arguments, unreachable services); per-file problems are
/// `SkippedFile`s instead.
public struct ImportError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
