import Dispatch
import Foundation

/// all-MiniLM-L6-v2 sentence embeddings, computed natively: WordPiece tokenisation, the 6-layer BERT
/// encoder on OpenBLAS, mean pooling and L2 normalisation, matching sentence-transformers' `encode`
/// (cosine ≥ 0.9999 on the reference set).
///
/// Speed comes from three choices. Texts are sorted by length and grouped, and each group is packed
/// without padding. The groups are spread over `threads` lanes that each run a whole forward pass with
/// single-threaded OpenBLAS, so both cores stay busy through the element-wise work and the many small
/// attention products too, not only inside large matrix products. A small batch (up to
/// `splitPassTokens` tokens, such as a few search queries) is one pass instead, each of its steps split
/// into `partsPerThread` parts per thread and run on the embedder's `WorkerTeam`, its products against
/// weights packed once (`PackedMatrix`).
/// Scratch memory is kept per lane and reused across calls.
///
/// Thread-safe: concurrent `embed` calls each take their own scratch memory from a pool. `embed` blocks
/// while it computes (its lanes run on Dispatch's threads); from async code call it from a thread that
/// may block, not from the cooperative pool.
public final class SentenceEmbedder: Sendable {
    public static let modelName = "all-MiniLM-L6-v2"

    /// Length of every vector (the model's hidden size, 384).
    public let dimension: Int
    public let tokenizer: WordPieceTokenizer
    public let configuration: ModelConfiguration
    /// Lanes a call runs on at once, or parts of a split pass (the `threads` given to `init`).
    public let threads: Int

    private let encoder: BertEncoder
    private let workspaces = WorkspacePool()
    /// The threads besides the caller's that run the parts of a split pass.
    private let team: WorkerTeam

    /// Loads and checks the model in `modelDirectory` (`config.json`, `vocab.txt`, `model.safetensors`,
    /// optionally `1_Pooling/config.json` and `sentence_bert_config.json`).
    ///
    /// - Parameter threads: lanes per call; default: the active processor count. Sets OpenBLAS to one thread
    ///   per call (a process-wide setting), because the lanes are the parallelism.
    /// - Throws: `EmbeddingError` `.modelNotFound` when the folder or a file is missing (the message says
    ///   how to install the model), `.invalidModel` when a file is damaged or disagrees with `config.json`,
    ///   `.unsupportedModel` for a model this code does not run.
    public init(modelDirectory: String, threads: Int? = nil) throws(EmbeddingError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: modelDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .modelNotFound(modelDirectory)
        }
        let paths = ModelConfiguration.Paths(directory: modelDirectory)
        let configuration = try ModelConfiguration(modelDirectory: modelDirectory)
        let tokenizer = try WordPieceTokenizer(vocabularyPath: paths.vocabulary)
        guard tokenizer.vocabularySize == configuration.vocabularySize else {
            throw .invalidModel(
                paths.vocabulary,
                "\(tokenizer.vocabularySize) tokens, config.json says vocab_size \(configuration.vocabularySize)")
        }
        encoder = try BertEncoder(weightsPath: paths.weights, configuration: configuration)
        self.configuration = configuration
        self.tokenizer = tokenizer
        self.dimension = configuration.hiddenSize
        self.threads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        team = WorkerTeam(helpers: self.threads - 1)
        BLAS.setThreadCount(1)
    }

    /// The unit vector of each text, in the order given. Texts longer than the model's 256 positions are
    /// truncated, as the model was trained.
    ///
    /// - Parameter batchSize: texts in flight at once, split over the lanes; larger groups make larger
    ///   matrix products but need more scratch memory (about 2.4 MB per 256-token text).
    public func embed(_ texts: [String], batchSize: Int = 32) -> [[Float]] {
        embed(tokenized: texts.map { tokenizer.encode($0, maxLength: configuration.maxSequenceLength) }, batchSize: batchSize)
    }

    /// `embed(_:batchSize:)` for texts already tokenised with `tokenizer` (for example to count tokens first).
    /// A text longer than `maxSequenceLength` keeps its first `maxSequenceLength − 1` ids and its last (`[SEP]`).
    public func embed(tokenized: [TokenizedText], batchSize: Int = 32) -> [[Float]] {
        guard !tokenized.isEmpty else { return [] }
        let limit = configuration.maxSequenceLength
        let inputs = tokenized.map { text in
            text.count <= limit
                ? text
                : TokenizedText(
                    ids: text.ids.prefix(limit - 1) + text.ids.suffix(1),
                    attentionMask: text.attentionMask.prefix(limit - 1) + text.attentionMask.suffix(1))
        }
        // Longest first (ties in input order): similar lengths share a group, and the last groups to run
        // are the short ones, so the lanes finish together.
        let order = inputs.indices.sorted { (inputs[$0].count, $1) > (inputs[$1].count, $0) }
        let sorted = order.map { inputs[$0] }
        let output = OutputMatrix(rows: sorted.count, columns: dimension)
        let tokens = sorted.reduce(0) { $0 + $1.count }
        if threads > 1 && tokens <= Self.splitPassTokens {
            // A small batch (search queries): one pass, each product split over the threads.
            let workspace = workspaces.take()
            output.withRows(0..<sorted.count) { rows in
                encoder.embed(sorted[...], workspace: workspace, output: rows, parts: threads * Self.partsPerThread, team: team)
            }
            workspaces.give(workspace)
            return output.rows(in: order)
        }
        let lanes = min(threads, sorted.count)
        let groupSize = max(1, (max(1, batchSize) + lanes - 1) / lanes)
        let groups = stride(from: 0, to: sorted.count, by: groupSize).map { $0..<min($0 + groupSize, sorted.count) }

        let next = GroupCounter(count: groups.count)
        DispatchQueue.concurrentPerform(iterations: lanes) { _ in
            let workspace = workspaces.take()
            while let group = next.take() {
                let range = groups[group]
                output.withRows(range) { rows in
                    encoder.embed(sorted[range], workspace: workspace, output: rows)
                }
            }
            workspaces.give(workspace)
        }

        return output.rows(in: order)
    }

    /// Batches of at most this many tokens run as one pass split over the threads (`BertEncoder.embed`'s
    /// `parts`); larger ones go to the lanes text by text. Splitting a pass saves reading and packing each
    /// weight matrix once per lane, which costs a third of the products' time for a few search queries but
    /// little for documents (a batch of 32 SciFact abstracts has about 7,600 tokens).
    static let splitPassTokens = 1_024

    /// A split pass cuts each step into this many parts per thread, and the threads take parts as they
    /// come free. With exactly one part per thread, a thread that lost its core for a while (to PostgreSQL,
    /// the keyword leg, the network) held up every join while the other core idled. Measured on SciFact
    /// (hybrid, 16 clients), with OpenBLAS's products: 405–412 searches/s and p99 55–57 ms with two parts
    /// per thread, against 388–391 and 58.5–60 with one. With the packed products (`PackedMatrix`), three
    /// parts (whole 32-column panels for every product of this model on two threads) against two, in
    /// alternating runs: p99 47.5/48.7 against 50.8/51.8 ms; six gave the same as three.
    static let partsPerThread = 3

    /// Scratch memory the embedder currently keeps (for memory reports).
    public var scratchByteCount: Int { workspaces.byteCount }

    /// The OpenBLAS kernel in use (for example "Cooperlake"; see `INTELLIDOCS_BLAS_KERNEL`), for
    /// benchmark reports: matrix-product speed depends on it.
    public static var blasKernel: String { BLAS.coreName }

    /// Settles which OpenBLAS kernels run (`INTELLIDOCS_BLAS_KERNEL`) and returns their name. Programs
    /// call it first thing in `main`: the choice may set `OPENBLAS_CORETYPE`, and changing the environment
    /// is only safe while no other thread reads it (Tesseract's set-up does). Without the call it happens
    /// on first use, which is correct but not as early.
    @discardableResult
    public static func prepareBLAS() -> String { KernelSelection.applied }
}

/// Workspaces waiting for the next call; a call takes one per lane and gives it back at the end.
private final class WorkspacePool: @unchecked Sendable {
    // @unchecked Sendable: `idle` is only touched under `lock`.
    private let lock = NSLock()
    private var idle: [Workspace] = []

    func take() -> Workspace {
        lock.withLock { idle.popLast() } ?? Workspace()
    }

    func give(_ workspace: Workspace) {
        lock.withLock { idle.append(workspace) }
    }

    var byteCount: Int {
        lock.withLock { idle.reduce(0) { $0 + $1.byteCount } }
    }
}

/// Hands out group numbers 0, 1, 2, … to whichever lane asks next.
private final class GroupCounter: @unchecked Sendable {
    // @unchecked Sendable: `next` is only touched under `lock`.
    private let lock = NSLock()
    private let count: Int
    private var next = 0

    init(count: Int) {
        self.count = count
    }

    func take() -> Int? {
        lock.withLock {
            guard next < count else { return nil }
            defer { next += 1 }
            return next
        }
    }
}

/// The result matrix of one call, one row per text, written by several lanes at once.
private final class OutputMatrix: @unchecked Sendable {
    // @unchecked Sendable: lanes write disjoint row ranges (each group once), and rows are read only
    // after `concurrentPerform` has returned, which orders those writes before the reads.
    private let storage: UnsafeMutablePointer<Float>
    private let rows: Int
    private let columns: Int

    init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        storage = .allocate(capacity: rows * columns)
        storage.initialize(repeating: 0, count: rows * columns)
    }

    deinit {
        storage.deallocate()
    }

    func withRows(_ range: Range<Int>, _ body: (UnsafeMutablePointer<Float>) -> Void) {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows)
        body(storage + range.lowerBound * columns)
    }

    func row(_ index: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: storage + index * columns, count: columns))
    }

    /// The rows in the callers' order: `order[position]` is the input index of row `position`.
    func rows(in order: [Int]) -> [[Float]] {
        var vectors = [[Float]](repeating: [], count: order.count)
        for (position, index) in order.enumerated() {
            vectors[index] = row(position)
        }
        return vectors
    }
}
