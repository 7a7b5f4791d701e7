import Embedding
import Foundation
import Testing

/// The real model and the reference data every model test uses, loaded once per test process.
///
/// The model folder comes from `INTELLIDOCS_MODEL_DIR`, as for the binary (`eval "$(deploy/local/stack env)"`);
/// the reference set from `../shared/data/embedding-reference` beside the repository.
enum ModelFixture {
    static let modelDirectory = ProcessInfo.processInfo.environment["INTELLIDOCS_MODEL_DIR"]

    /// The repository's root: this file is `Tests/EmbeddingTests/ModelFixture.swift`.
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static let referenceDirectory = repositoryRoot.deletingLastPathComponent()
        .appendingPathComponent("shared/data/embedding-reference")

    /// The embedder, loaded once (about 0.1 s; the weights are memory-mapped).
    static let embedder: Result<SentenceEmbedder, EmbeddingError>? = modelDirectory.map { directory in
        Result { () throws(EmbeddingError) in try SentenceEmbedder(modelDirectory: directory, threads: 2) }
    }

    /// The loaded embedder, or a test failure that says how to get the model.
    static func requireEmbedder(sourceLocation: SourceLocation = #_sourceLocation) throws -> SentenceEmbedder {
        let loaded = try #require(
            embedder, "INTELLIDOCS_MODEL_DIR is not set: run eval \"$(deploy/local/stack env)\" first",
            sourceLocation: sourceLocation)
        return try loaded.get()
    }

    /// One line of the reference set's JSON Lines files.
    struct Reference: Decodable {
        var id: Int
        var text: String?
        var inputIDs: [Int32]?
        var embedding: [Float]?

        enum CodingKeys: String, CodingKey {
            case id, text, embedding
            case inputIDs = "input_ids"
        }
    }

    /// The lines of `name` (`inputs.jsonl`, `tokens.jsonl`, `embeddings.jsonl`) keyed by id.
    static func reference(_ name: String) throws -> [Int: Reference] {
        let url = referenceDirectory.appendingPathComponent(name)
        let data = try Data(contentsOf: url)
        let decoder = JSONDecoder()
        var result: [Int: Reference] = [:]
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            let reference = try decoder.decode(Reference.self, from: Data(line))
            result[reference.id] = reference
        }
        return result
    }

    /// The reference texts by id.
    static func referenceTexts() throws -> [Int: String] {
        try reference("inputs.jsonl").compactMapValues(\.text)
    }
}

/// Cosine similarity of two vectors, in double precision.
func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var dot = 0.0
    var normA = 0.0
    var normB = 0.0
    for (x, y) in zip(a, b) {
        dot += Double(x) * Double(y)
        normA += Double(x) * Double(x)
        normB += Double(y) * Double(y)
    }
    return dot / (normA.squareRoot() * normB.squareRoot())
}

/// Euclidean length of a vector, in double precision.
func norm(_ vector: [Float]) -> Double {
    vector.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
}
