import Foundation

/// The settings of a sentence-transformers BERT model folder that decide how it runs: `config.json`
/// (the transformer), `1_Pooling/config.json` (pooling) and `sentence_bert_config.json` (sequence length).
///
/// Only what this implementation can run is accepted: absolute positions, exact (erf) GELU, mean pooling.
/// Anything else is refused at load time with `.unsupportedModel`, so a different model dropped into the
/// folder cannot silently produce wrong vectors.
public struct ModelConfiguration: Sendable, Equatable {
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var vocabularySize: Int
    public var typeVocabularySize: Int
    public var layerNormEpsilon: Float
    /// Positions the model reads, `[CLS]` and `[SEP]` included (sentence-transformers' `max_seq_length`).
    public var maxSequenceLength: Int

    public var headSize: Int { hiddenSize / headCount }

    /// The files of a model folder.
    struct Paths {
        let directory: String
        var config: String { directory + "/config.json" }
        var vocabulary: String { directory + "/vocab.txt" }
        var weights: String { directory + "/model.safetensors" }
        var pooling: String { directory + "/1_Pooling/config.json" }
        var sentenceBERT: String { directory + "/sentence_bert_config.json" }
    }

    private struct BERTConfig: Decodable {
        var hiddenSize: Int
        var numHiddenLayers: Int
        var numAttentionHeads: Int
        var intermediateSize: Int
        var maxPositionEmbeddings: Int
        var vocabSize: Int
        var typeVocabSize: Int
        var layerNormEps: Double
        var hiddenAct: String
        var positionEmbeddingType: String?
        var modelType: String?
    }

    private struct PoolingConfig: Decodable {
        var wordEmbeddingDimension: Int?
        var poolingModeClsToken: Bool?
        var poolingModeMeanTokens: Bool?
        var poolingModeMaxTokens: Bool?
        var poolingModeMeanSqrtLenTokens: Bool?
        var poolingModeWeightedmeanTokens: Bool?
        var poolingModeLasttoken: Bool?
    }

    private struct SentenceBERTConfig: Decodable {
        var maxSeqLength: Int?
    }

    /// Reads and checks the configuration files of the model folder `directory`. The pooling and
    /// sentence-transformers files are optional (mean pooling and 256 positions are then assumed), as
    /// plain BERT folders lack them; `config.json` is required.
    public init(modelDirectory directory: String) throws(EmbeddingError) {
        let paths = Paths(directory: directory)
        let bert: BERTConfig = try Self.decode(paths.config)
        guard bert.modelType == nil || bert.modelType == "bert" else {
            throw .unsupportedModel(paths.config, "model_type \(bert.modelType ?? "") is not bert")
        }
        guard bert.hiddenAct == "gelu" else {
            throw .unsupportedModel(paths.config, "hidden_act \(bert.hiddenAct) (only gelu, the erf form, is implemented)")
        }
        guard (bert.positionEmbeddingType ?? "absolute") == "absolute" else {
            throw .unsupportedModel(paths.config, "position_embedding_type \(bert.positionEmbeddingType ?? "")")
        }
        let sizes = [
            bert.hiddenSize, bert.numHiddenLayers, bert.numAttentionHeads, bert.intermediateSize,
            bert.maxPositionEmbeddings, bert.vocabSize, bert.typeVocabSize,
        ]
        guard sizes.allSatisfy({ $0 > 0 }), bert.hiddenSize % bert.numAttentionHeads == 0 else {
            throw .invalidModel(paths.config, "sizes must be positive and hiddenSize a multiple of numAttentionHeads")
        }
        if let pooling: PoolingConfig = try Self.decodeIfPresent(paths.pooling) {
            let others = [
                pooling.poolingModeClsToken, pooling.poolingModeMaxTokens,
                pooling.poolingModeMeanSqrtLenTokens, pooling.poolingModeWeightedmeanTokens,
                pooling.poolingModeLasttoken,
            ]
            guard pooling.poolingModeMeanTokens == true, others.allSatisfy({ $0 != true }) else {
                throw .unsupportedModel(paths.pooling, "only mean pooling is implemented")
            }
            if let dimension = pooling.wordEmbeddingDimension, dimension != bert.hiddenSize {
                throw .invalidModel(paths.pooling, "word_embedding_dimension \(dimension) ≠ hiddenSize \(bert.hiddenSize)")
            }
        }
        let sentenceBERT: SentenceBERTConfig? = try Self.decodeIfPresent(paths.sentenceBERT)
        let maxSequenceLength = sentenceBERT?.maxSeqLength ?? WordPieceTokenizer.defaultMaxLength
        guard (2...bert.maxPositionEmbeddings).contains(maxSequenceLength) else {
            throw .invalidModel(paths.sentenceBERT, "max_seq_length \(maxSequenceLength) outside 2…\(bert.maxPositionEmbeddings)")
        }
        hiddenSize = bert.hiddenSize
        layerCount = bert.numHiddenLayers
        headCount = bert.numAttentionHeads
        intermediateSize = bert.intermediateSize
        maxPositions = bert.maxPositionEmbeddings
        vocabularySize = bert.vocabSize
        typeVocabularySize = bert.typeVocabSize
        layerNormEpsilon = Float(bert.layerNormEps)
        self.maxSequenceLength = maxSequenceLength
    }

    /// The JSON file at `path`; a missing file means the model is not installed.
    private static func decode<T: Decodable>(_ path: String) throws(EmbeddingError) -> T {
        guard FileManager.default.fileExists(atPath: path) else {
            throw .modelNotFound(path)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .invalidModel(path, "not readable")
        }
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return try decoder.decode(T.self, from: data)
        } catch {
            throw .invalidModel(path, "not the expected JSON (\(error))")
        }
    }

    /// The JSON file at `path`, or nil when there is none.
    private static func decodeIfPresent<T: Decodable>(_ path: String) throws(EmbeddingError) -> T? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try decode(path) as T
    }
}
