import Foundation

/// A BEIR `corpus.jsonl`: one JSON object per line with `_id`, `title` and `text`.
struct BEIRCorpus {
    struct Record: Decodable {
        let id: String
        let title: String
        let text: String
        enum CodingKeys: String, CodingKey { case id = "_id", title, text }
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if let text = try? container.decode(String.self, forKey: .id) {
                id = text
            } else {
                id = String(try container.decode(Int.self, forKey: .id))
            }
            title = try container.decodeIfPresent(String.self, forKey: .title) ?? ""
            text = try container.decodeIfPresent(String.self, forKey: .text) ?? ""
        }
    }

    let file: String

    /// `path` is the corpus file or a folder holding `corpus.jsonl`.
    init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ImportError(message: "\(path) does not exist; give a BEIR corpus.jsonl or the folder holding it")
        }
        file = isDirectory.boolValue ? (path as NSString).appendingPathComponent("corpus.jsonl") : path
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw ImportError(message: "\(file) cannot be read; a BEIR folder must hold corpus.jsonl")
        }
    }

    /// Calls `body` with each non-empty line (1-based line numbers), reading the file in blocks.
    func forEachLine(_ body: (Int, [UInt8]) async throws -> Void) async throws {
        guard let handle = FileHandle(forReadingAtPath: file) else {
            throw ImportError(message: "\(file) cannot be opened")
        }
        defer { try? handle.close() }
        var buffer: [UInt8] = []
        var number = 0
        while true {
            let block = try handle.read(upToCount: 4 << 20) ?? Data()
            if block.isEmpty { break }
            buffer.append(contentsOf: block)
            var start = 0
            while let newline = buffer[start...].firstIndex(of: 0x0A) {
                number += 1
                let line = trim(buffer[start..<newline])
                if !line.isEmpty { try await body(number, line) }
                start = newline + 1
            }
            buffer.removeFirst(start)
        }
        if !buffer.isEmpty {
            number += 1
            let line = trim(buffer[...])
            if !line.isEmpty { try await body(number, line) }
        }
    }

    private func trim(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var slice = bytes
        while let last = slice.last, last == 0x0D || last == 0x20 || last == 0x09 { slice.removeLast() }
        while let first = slice.first, first == 0x20 || first == 0x09 { slice.removeFirst() }
        return Array(slice)
    }

    static func parse(_ line: [UInt8], number: Int) throws -> Record {
        let record: Record
        do {
            record = try JSONDecoder().decode(Record.self, from: Data(line))
        } catch {
            throw ImportError(message: "line \(number) is not a BEIR record ({\"_id\", \"title\", \"text\"}): \(Self.reason(error))")
        }
        if record.id.isEmpty { throw ImportError(message: "line \(number) has an empty _id") }
        if record.title.isEmpty && record.text.isEmpty { throw ImportError(message: "line \(number) has neither title nor text") }
        return record
    }

    private static func reason(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "missing \(key.stringValue)"
        case DecodingError.typeMismatch(_, let context): context.debugDescription
        case DecodingError.dataCorrupted: "not valid JSON"
        default: "\(error)"
        }
    }
}
