import ArgumentParser
import Embedding
import Foundation

/// Where the model is: `--model-dir`, else `INTELLIDOCS_MODEL_DIR` (set by `deploy/local/stack env`).
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("model-dir"), help: "The all-MiniLM-L6-v2 folder (default: INTELLIDOCS_MODEL_DIR).")
    var modelDirectory: String?

    func directory() throws -> String {
        if let modelDirectory { return modelDirectory }
        if let directory = ProcessInfo.processInfo.environment["INTELLIDOCS_MODEL_DIR"], !directory.isEmpty {
            return directory
        }
        throw CLIError(
            "no model folder: set INTELLIDOCS_MODEL_DIR (eval \"$(deploy/local/stack env)\") or pass --model-dir")
    }

    /// The tokenizer of the model folder, with its sequence length.
    func tokenizer() throws -> (WordPieceTokenizer, maxLength: Int) {
        let directory = try directory()
        do {
            let configuration = try ModelConfiguration(modelDirectory: directory)
            return (try WordPieceTokenizer(vocabularyPath: directory + "/vocab.txt"), configuration.maxSequenceLength)
        } catch {
            throw CLIError(error.description)
        }
    }

    func embedder(threads: Int?) throws -> SentenceEmbedder {
        do {
            return try SentenceEmbedder(modelDirectory: try directory(), threads: threads)
        } catch let error as EmbeddingError {
            throw CLIError(error.description)
        }
    }
}

/// One input line: `{"id": …, "text": …}`; the id (number or string) is echoed back unchanged.
struct TextRecord: Decodable {
    let id: RecordID
    let text: String
}

/// A record id as the input spelled it: a JSON number or string.
enum RecordID: Codable, Sendable {
    case number(Int)
    case string(String)

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            self = .number(number)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .number(let number): try container.encode(number)
        case .string(let string): try container.encode(string)
        }
    }
}

/// Reads JSON Lines input and writes JSON Lines output; `-` is standard input or output.
enum JSONLines {
    /// The records of `path`; blank lines are skipped, anything else must decode.
    static func read<Record: Decodable>(_ path: String, as type: Record.Type = Record.self) throws -> [Record] {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw CLIError("cannot read \(path) (missing, a folder, or no permission)")
            }
            data = contents
        }
        let decoder = JSONDecoder()
        var records: [Record] = []
        for (number, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            guard line.contains(where: { ![UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r")].contains($0) }) else {
                continue
            }
            do {
                records.append(try decoder.decode(Record.self, from: Data(line)))
            } catch {
                throw CLIError("line \(number + 1) of \(path) is not a JSON object like {\"id\": 1, \"text\": \"…\"}")
            }
        }
        return records
    }

    /// A line-by-line writer to `path` (created or truncated). Lines are composed by hand so `id` comes
    /// first and floats keep their shortest round-trip form; JSONEncoder orders keys arbitrarily.
    final class Writer {
        private let handle: FileHandle
        private let encoder = JSONEncoder()
        private var buffer = Data()

        init(path: String) throws {
            if path == "-" {
                handle = FileHandle.standardOutput
            } else {
                guard FileManager.default.createFile(atPath: path, contents: nil),
                    let handle = FileHandle(forWritingAtPath: path)
                else {
                    throw CLIError("cannot write \(path)")
                }
                self.handle = handle
            }
            encoder.outputFormatting = [.withoutEscapingSlashes]
        }

        /// Writes `{"id": id, "name": [numbers], …}` for each field in order.
        func write(id: RecordID, _ fields: KeyValuePairs<String, [String]>) throws {
            var line = "{\"id\":" + String(decoding: try encoder.encode(id), as: UTF8.self)
            for (name, numbers) in fields {
                line += ",\"\(name)\":[" + numbers.joined(separator: ",") + "]"
            }
            line += "}\n"
            buffer.append(contentsOf: line.utf8)
            if buffer.count >= 1 << 20 {
                try flush()
            }
        }

        func flush() throws {
            try handle.write(contentsOf: buffer)
            buffer.removeAll(keepingCapacity: true)
        }
    }
}

/// `intellidocs tokenize`: the model's word-piece ids for each text, as the embed stage feeds them.
struct TokenizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenise texts as all-MiniLM-L6-v2 does: {\"id\", \"text\"} lines in, {\"id\", \"input_ids\", \"attention_mask\"} out.",
        discussion: """
            Ids include [CLS] and [SEP] and stop at the model's 256 positions. Only vocab.txt and the configuration \
            of the model folder are read. Use - for standard input or output.
            """)

    @Option(help: "JSON Lines input: {\"id\": …, \"text\": …} per line.") var input: String
    @Option(help: "JSON Lines output.") var output: String
    @OptionGroup var model: ModelOptions

    func run() async throws {
        let (tokenizer, maxLength) = try model.tokenizer()
        let records = try JSONLines.read(input, as: TextRecord.self)
        let writer = try JSONLines.Writer(path: output)
        for record in records {
            let encoded = tokenizer.encode(record.text, maxLength: maxLength)
            try writer.write(
                id: record.id,
                ["input_ids": encoded.ids.map(String.init), "attention_mask": encoded.attentionMask.map(String.init)])
        }
        try writer.flush()
    }
}

/// `intellidocs embed`: one 384-float unit vector per text.
struct EmbedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed texts with all-MiniLM-L6-v2: {\"id\", \"text\"} lines in, {\"id\", \"embedding\": [384 floats]} out.",
        discussion: "Vectors have unit length (cosine similarity is their dot product). Use - for standard input or output.")

    @Option(help: "JSON Lines input: {\"id\": …, \"text\": …} per line.") var input: String
    @Option(help: "JSON Lines output.") var output: String
    @Option(help: "Texts in flight at once.") var batch = 32
    @Option(help: "Threads (default: the number of cores).") var threads: Int?
    @OptionGroup var model: ModelOptions

    /// Texts embedded per `embed` call: enough for length bucketing to find similar lengths, without
    /// holding every vector of a large file in memory.
    static let chunkSize = 4096

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() async throws {
        let embedder = try model.embedder(threads: threads)
        let records = try JSONLines.read(input, as: TextRecord.self)
        let writer = try JSONLines.Writer(path: output)
        var start = 0
        while start < records.count {
            let chunk = records[start..<min(start + Self.chunkSize, records.count)]
            let vectors = embedder.embed(chunk.map(\.text), batchSize: batch)
            for (record, vector) in zip(chunk, vectors) {
                try writer.write(id: record.id, ["embedding": vector.map(\.description)])
            }
            start += chunk.count
        }
        try writer.flush()
    }
}

/// `intellidocs bench embed`: embedding throughput on a JSON Lines corpus, timed like the sentence-transformers
/// anchor script (`shared/bench/embed_anchor.py`): tokenisation included, median of the timed runs.
struct EmbedBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed a corpus with all-MiniLM-L6-v2; print texts/second and tokens/second.",
        discussion: """
            Each input line needs "text" and may have "title" (BEIR corpora): the text embedded is title + " " + text, \
            as the sentence-transformers anchor script builds it. Tokens are counted after truncation to 256, [CLS] \
            and [SEP] included. One warm-up pass over up to 256 texts, then --runs timed passes; the median is \
            reported, with every run's seconds and the process's resident memory (VmRSS, peak VmHWM) in MB.
            """)

    @Option(help: "JSON Lines corpus: {\"text\": …} (optionally \"title\") per line.") var input: String
    @Option(help: "Use only the first N texts.") var limit: Int?
    @Option(help: "Texts in flight at once.") var batch = 32
    @Option(help: "Threads (default: the number of cores).") var threads: Int?
    @Option(help: "Timed runs; the median is reported.") var runs = 3
    @Flag(
        name: .customLong("per-batch"),
        help: "One call per --batch texts, as search embeds its queries (a small batch is one pass split over the threads).")
    var perBatch = false
    @Flag(help: "Print the result as JSON.") var json = false
    @OptionGroup var model: ModelOptions

    struct Passage: Decodable {
        let title: String?
        let text: String
    }

    struct Result: Encodable {
        let benchmark = "embed"
        let model = SentenceEmbedder.modelName
        let texts: Int
        let tokens: Int
        let threads: Int
        let batch: Int
        let perBatch: Bool
        let seconds: Double
        let runsSeconds: [Double]
        let textsPerSecond: Double
        let tokensPerSecond: Double
        let residentMB: Double?
        let peakResidentMB: Double?
        let blasKernel: String

        enum CodingKeys: String, CodingKey {
            case benchmark, model, texts, tokens, threads, batch, seconds, perBatch = "per_batch"
            case runsSeconds = "runs_s", textsPerSecond = "texts_per_s", tokensPerSecond = "tokens_per_s"
            case residentMB = "rss_mb", peakResidentMB = "peak_rss_mb", blasKernel = "openblas_kernel"
        }
    }

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        var passages = try JSONLines.read(input, as: Passage.self)
        if let limit { passages = Array(passages.prefix(limit)) }
        guard !passages.isEmpty else { throw CLIError("\(input) has no texts") }
        let texts = passages.map { ($0.title ?? "") + " " + $0.text }
        let embedder = try model.embedder(threads: threads)
        let maxLength = embedder.configuration.maxSequenceLength
        let tokens = texts.reduce(0) { $0 + embedder.tokenizer.encode($1, maxLength: maxLength).count }

        let embed = { (texts: [String]) -> [[Float]] in
            guard perBatch else { return embedder.embed(texts, batchSize: batch) }
            return stride(from: 0, to: texts.count, by: batch).flatMap {
                embedder.embed(Array(texts[$0..<min($0 + batch, texts.count)]), batchSize: batch)
            }
        }
        _ = embed(Array(texts.prefix(256)))
        var times: [Double] = []
        for _ in 0..<runs {
            let started = ContinuousClock.now
            let vectors = embed(texts)
            times.append((ContinuousClock.now - started) / .seconds(1))
            guard vectors.count == texts.count else { throw CLIError("embedding lost texts") }
        }
        let median = times.sorted()[times.count / 2]
        let memory = ProcessMemory.read()
        let result = Result(
            texts: texts.count, tokens: tokens, threads: embedder.threads, batch: batch, perBatch: perBatch,
            seconds: (median * 1000).rounded() / 1000, runsSeconds: times.map { ($0 * 1000).rounded() / 1000 },
            textsPerSecond: (Double(texts.count) / median * 100).rounded() / 100,
            tokensPerSecond: (Double(tokens) / median * 10).rounded() / 10,
            residentMB: memory.resident, peakResidentMB: memory.peak,
            blasKernel: SentenceEmbedder.blasKernel)
        if json {
            try printJSON(result)
        } else {
            print(
                "\(result.texts) texts, \(result.tokens) tokens in \(result.seconds) s (median of \(runs)): "
                    + "\(result.textsPerSecond) texts/s, \(result.tokensPerSecond) tokens/s; "
                    + "resident \(result.residentMB.map { "\($0)" } ?? "?") MB, peak \(result.peakResidentMB.map { "\($0)" } ?? "?") MB")
        }
    }
}

/// This process's resident memory from /proc/self/status (Linux; nil elsewhere).
enum ProcessMemory {
    static func read() -> (resident: Double?, peak: Double?) {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (nil, nil) }
        func megabytes(_ field: String) -> Double? {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
                let kilobytes = Double(line.dropFirst(field.count + 1).split(whereSeparator: \.isWhitespace).first ?? "")
            else { return nil }
            return (kilobytes / 1024 * 10).rounded() / 10
        }
        return (megabytes("VmRSS"), megabytes("VmHWM"))
    }
}
