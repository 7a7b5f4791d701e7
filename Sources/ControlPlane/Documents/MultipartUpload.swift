import Crypto
import Foundation
import Hummingbird
import MultipartKit
import NIOCore

/// A `multipart/form-data` upload read as it arrives: each `file` part streams into a temporary file
/// while its SHA-256 and size are computed, so an upload of any size never sits in memory; other parts
/// are small text fields. The caller moves the files into the blob store and removes the folder.
struct MultipartUpload {
    struct File {
        let filename: String
        let path: String
        let size: Int
        let sha256: String
    }

    let folder: String
    private(set) var files: [File] = []
    private(set) var fields: [String: [String]] = [:]

    /// What a part is, from its `Content-Disposition`.
    private enum PartKind {
        case file(name: String, handle: FileHandle, path: String)
        case field(name: String)
    }

    /// Reads the whole body. Refuses (413) a file over `maxFileBytes` as soon as it passes the limit,
    /// (400) a body that is not multipart, an empty file, a text field over 4 KB, more than `maxFiles`.
    static func read(
        _ request: Request, into temporaryRoot: String, maxFileBytes: Int, limitName: String, maxFiles: Int = 100
    ) async throws -> MultipartUpload {
        guard let contentType = request.headers[.contentType], contentType.lowercased().hasPrefix("multipart/form-data"),
              let boundary = parameter("boundary", in: contentType), !boundary.isEmpty
        else {
            throw APIError(
                .unsupportedMediaType, code: "unsupported_media_type",
                message: "send the documents as multipart/form-data with one or more parts named `file`")
        }
        let folder = temporaryRoot + "/upload-" + UUID().uuidString
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw APIError.unavailable("cannot write the upload to the blob store's folder; check the server's storage")
        }
        var upload = MultipartUpload(folder: folder)
        do {
            try await upload.parse(request.body, boundary: boundary, maxFileBytes: maxFileBytes, limitName: limitName, maxFiles: maxFiles)
        } catch {
            upload.discard()
            throw error
        }
        return upload
    }

    /// Removes the temporary files.
    func discard() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private mutating func parse(_ body: RequestBody, boundary: String, maxFileBytes: Int, limitName: String, maxFiles: Int) async throws {
        let parser = MultipartParser(boundary: boundary)
        var headers: [String: String] = [:]
        var kind: PartKind?
        var hasher = SHA256()
        var size = 0
        var fieldBytes: [UInt8] = []
        var failure: APIError?
        var files: [File] = []
        var fields: [String: [String]] = [:]
        let folder = self.folder

        parser.onHeader = { name, value in headers[name.lowercased()] = value }
        parser.onBody = { buffer in
            guard failure == nil else { return }
            if kind == nil {
                let disposition = headers["content-disposition"] ?? ""
                let name = Self.parameter("name", in: disposition) ?? ""
                if let filename = Self.parameter("filename", in: disposition) {
                    guard files.count < maxFiles else {
                        failure = APIError.badRequest("at most \(maxFiles) files per request")
                        return
                    }
                    guard name == "file" else {
                        failure = APIError.validation(name, "file parts must be named `file`")
                        return
                    }
                    let path = folder + "/\(files.count)"
                    guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                        failure = APIError.unavailable("cannot write the upload; check the server's storage")
                        return
                    }
                    kind = .file(name: filename, handle: handle, path: path)
                    hasher = SHA256()
                    size = 0
                } else {
                    kind = .field(name: name)
                    fieldBytes = []
                }
            }
            switch kind {
            case .file(_, let handle, _):
                size += buffer.readableBytes
                if size > maxFileBytes {
                    failure = APIError(
                        .contentTooLarge, code: "file_too_large",
                        message: "a file is larger than \(maxFileBytes) bytes, the \(limitName)")
                    return
                }
                buffer.withUnsafeReadableBytes { bytes in
                    hasher.update(bufferPointer: bytes)
                    handle.write(Data(bytes))
                }
            case .field(let name):
                fieldBytes += buffer.readableBytesView
                if fieldBytes.count > 4096 { failure = APIError.validation(name, "is longer than 4096 bytes") }
            case nil:
                break
            }
        }
        parser.onPartComplete = {
            defer {
                kind = nil
                headers = [:]
            }
            guard failure == nil else { return }
            switch kind {
            case .file(let filename, let handle, let path):
                try? handle.close()
                if size == 0 {
                    failure = APIError.validation("file", "\(filename) is empty (0 bytes); there is nothing to process")
                    return
                }
                let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
                files.append(File(filename: Self.safeName(filename), path: path, size: size, sha256: digest))
            case .field(let name):
                fields[name, default: []].append(String(decoding: fieldBytes, as: UTF8.self))
            case nil:
                // A part without a body: an empty file, or an empty field.
                let disposition = headers["content-disposition"] ?? ""
                if let filename = Self.parameter("filename", in: disposition) {
                    failure = APIError.validation("file", "\(filename) is empty (0 bytes); there is nothing to process")
                } else if let name = Self.parameter("name", in: disposition) {
                    fields[name, default: []].append("")
                }
            }
        }

        do {
            for try await chunk in body {
                try parser.execute(chunk)
                if let failure { throw failure }
            }
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.badRequest("the multipart body is malformed; send multipart/form-data with parts named `file`")
        }
        if let failure { throw failure }
        if case .file(_, let handle, _) = kind { try? handle.close() }
        guard !files.isEmpty else { throw APIError.validation("file", "send at least one part named `file`") }
        self.files = files
        self.fields = fields
    }

    /// A parameter of a header value such as `form-data; name="file"; filename="a.pdf"`.
    static func parameter(_ name: String, in header: String) -> String? {
        for piece in header.split(separator: ";").dropFirst() {
            let pair = piece.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == name else { continue }
            var value = pair[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    /// The last path component of a client's file name, without control characters: a name, never a path.
    static func safeName(_ filename: String) -> String {
        let last = filename.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let cleaned = String(last.unicodeScalars.filter { !CharacterSet.controlCharacters.contains($0) }.map(Character.init))
        let trimmed = cleaned.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty || trimmed == "." || trimmed == ".." ? "upload" : String(trimmed.prefix(255))
    }
}
