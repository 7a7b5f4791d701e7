/// The BERT encoder of a sentence-transformers model, with mean pooling and L2 normalisation: token ids in,
/// one unit vector per text out.
///
/// Texts are packed, not padded: a group of texts is one `[tokens × hidden]` matrix with each text's rows
/// next to each other, so every linear layer is a single large `sgemm` with no padding rows at all.
/// Attention runs per text and head on that text's rows only (`[L×32]·[32×L]`, softmax, `[L×L]·[L×32]`),
/// which is exactly what the padding mask achieves in a padded batch. Biases ride along for free: the
/// output is prefilled with the bias (or the residual) and `sgemm` accumulates onto it (`beta = 1`).
final class BertEncoder: Sendable {
    let configuration: ModelConfiguration
    private let weights: Weights

    /// The weights of one encoder layer; matrices are `[out × in]` as PyTorch stores them.
    struct Layer: Sendable {
        var query: Tensor
        var key: Tensor
        var value: Tensor
        /// The query, key and value biases side by side, to prefill the packed `[tokens × 3·hidden]` output.
        var qkvBias: [Float]
        var attentionOutput: Tensor
        var attentionOutputBias: Tensor
        var attentionNormGamma: Tensor
        var attentionNormBeta: Tensor
        var intermediate: Tensor
        var intermediateBias: Tensor
        var output: Tensor
        var outputBias: Tensor
        var outputNormGamma: Tensor
        var outputNormBeta: Tensor
    }

    struct Weights: Sendable {
        var wordEmbeddings: Tensor
        var positionEmbeddings: Tensor
        var tokenTypeEmbeddings: Tensor
        var embeddingNormGamma: Tensor
        var embeddingNormBeta: Tensor
        var layers: [Layer]
    }

    /// Maps `model.safetensors` and checks every tensor the forward pass reads against `configuration`.
    init(weightsPath: String, configuration: ModelConfiguration) throws(EmbeddingError) {
        let file = try SafetensorsFile(path: weightsPath)
        let hidden = configuration.hiddenSize
        let inner = configuration.intermediateSize
        // Checkpoints exported from BertModel have no prefix; those from a task model start with "bert.".
        let prefix = file.entries["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        func tensor(_ name: String, _ shape: Int...) throws(EmbeddingError) -> Tensor {
            try file.floatTensor(prefix + name, shape: shape)
        }
        var layers: [Layer] = []
        for index in 0..<configuration.layerCount {
            let layer = "encoder.layer.\(index)."
            let biases = [
                try tensor(layer + "attention.self.query.bias", hidden),
                try tensor(layer + "attention.self.key.bias", hidden),
                try tensor(layer + "attention.self.value.bias", hidden),
            ]
            layers.append(
                Layer(
                    query: try tensor(layer + "attention.self.query.weight", hidden, hidden),
                    key: try tensor(layer + "attention.self.key.weight", hidden, hidden),
                    value: try tensor(layer + "attention.self.value.weight", hidden, hidden),
                    qkvBias: biases.flatMap { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) },
                    attentionOutput: try tensor(layer + "attention.output.dense.weight", hidden, hidden),
                    attentionOutputBias: try tensor(layer + "attention.output.dense.bias", hidden),
                    attentionNormGamma: try tensor(layer + "attention.output.LayerNorm.weight", hidden),
                    attentionNormBeta: try tensor(layer + "attention.output.LayerNorm.bias", hidden),
                    intermediate: try tensor(layer + "intermediate.dense.weight", inner, hidden),
                    intermediateBias: try tensor(layer + "intermediate.dense.bias", inner),
                    output: try tensor(layer + "output.dense.weight", hidden, inner),
                    outputBias: try tensor(layer + "output.dense.bias", hidden),
                    outputNormGamma: try tensor(layer + "output.LayerNorm.weight", hidden),
                    outputNormBeta: try tensor(layer + "output.LayerNorm.bias", hidden)))
        }
        weights = Weights(
            wordEmbeddings: try tensor("embeddings.word_embeddings.weight", configuration.vocabularySize, hidden),
            positionEmbeddings: try tensor("embeddings.position_embeddings.weight", configuration.maxPositions, hidden),
            tokenTypeEmbeddings: try tensor(
                "embeddings.token_type_embeddings.weight", configuration.typeVocabularySize, hidden),
            embeddingNormGamma: try tensor("embeddings.LayerNorm.weight", hidden),
            embeddingNormBeta: try tensor("embeddings.LayerNorm.bias", hidden),
            layers: layers)
        self.configuration = configuration
    }

    /// Encodes `texts` (each at most `maxPositions` ids, all ids inside the vocabulary) and writes text
    /// `i`'s unit vector to `output + i · hiddenSize`. Uses only `workspace` for scratch memory, so
    /// concurrent calls with different workspaces are safe.
    func embed(_ texts: ArraySlice<TokenizedText>, workspace: Workspace, output: UnsafeMutablePointer<Float>) {
        let hidden = configuration.hiddenSize
        let tokens = texts.reduce(0) { $0 + $1.count }
        guard tokens > 0 else { return }
        let longest = texts.reduce(0) { max($0, $1.count) }
        workspace.prepare(tokens: tokens, longest: longest, configuration: configuration)
        let states = workspace.hidden.pointer

        embedTokens(texts, into: states)
        for layer in weights.layers {
            attentionBlock(layer, texts: texts, tokens: tokens, workspace: workspace)
            feedForwardBlock(layer, tokens: tokens, workspace: workspace)
        }

        // Mean over every position (the mask is all ones for an unpadded text), then unit length.
        var row = 0
        for (index, text) in texts.enumerated() {
            let vector = output + index * hidden
            vector.initialize(repeating: 0, count: hidden)
            for position in 0..<text.count {
                let state = states + (row + position) * hidden
                for column in 0..<hidden {
                    vector[column] += state[column]
                }
            }
            row += text.count
            var squares = 0.0
            for column in 0..<hidden {
                vector[column] /= Float(text.count)
                squares += Double(vector[column]) * Double(vector[column])
            }
            let inverse = squares > 0 ? Float(1 / squares.squareRoot()) : 0
            for column in 0..<hidden {
                vector[column] *= inverse
            }
        }
    }

    /// Word + position + token-type (always type 0) embeddings, then LayerNorm, one row per token.
    private func embedTokens(_ texts: ArraySlice<TokenizedText>, into states: UnsafeMutablePointer<Float>) {
        let hidden = configuration.hiddenSize
        let vocabulary = Int32(configuration.vocabularySize)
        var row = 0
        for text in texts {
            for (position, id) in text.ids.enumerated() {
                let state = states + row * hidden
                let word = weights.wordEmbeddings.pointer + Int(id >= 0 && id < vocabulary ? id : 0) * hidden
                let place = weights.positionEmbeddings.pointer + position * hidden
                let type = weights.tokenTypeEmbeddings.pointer
                for column in 0..<hidden {
                    state[column] = word[column] + place[column] + type[column]
                }
                Kernels.addBiasLayerNorm(
                    state, bias: nil, gamma: weights.embeddingNormGamma.pointer, beta: weights.embeddingNormBeta.pointer,
                    count: hidden, epsilon: configuration.layerNormEpsilon, output: state)
                row += 1
            }
        }
    }

    /// `states ← LayerNorm(states + SelfAttention(states))`.
    private func attentionBlock(_ layer: Layer, texts: ArraySlice<TokenizedText>, tokens: Int, workspace: Workspace) {
        let hidden = configuration.hiddenSize
        let headSize = configuration.headSize
        let packed = 3 * hidden
        let states = workspace.hidden.pointer
        let qkv = workspace.qkv.pointer
        let context = workspace.context.pointer
        let scores = workspace.scores.pointer

        // Q, K and V side by side in one [tokens × 3·hidden] matrix, prefilled with their biases.
        layer.qkvBias.withUnsafeBufferPointer { bias in
            for row in 0..<tokens {
                (qkv + row * packed).update(from: bias.baseAddress!, count: packed)
            }
        }
        for (offset, weight) in [(0, layer.query), (hidden, layer.key), (2 * hidden, layer.value)] {
            BLAS.gemm(
                m: tokens, n: hidden, k: hidden, a: states, lda: hidden, b: weight.pointer, ldb: hidden,
                transposeB: true, beta: 1, c: qkv + offset, ldc: packed)
        }

        // Per text and head: softmax(Q·Kᵀ / √d) · V, written into the head's columns of `context`.
        let scale = 1 / Float(headSize).squareRoot()
        var row = 0
        for text in texts {
            let length = text.count
            for head in 0..<configuration.headCount {
                let query = qkv + row * packed + head * headSize
                BLAS.gemm(
                    m: length, n: length, k: headSize, alpha: scale, a: query, lda: packed,
                    b: query + hidden, ldb: packed, transposeB: true, c: scores, ldc: length)
                Kernels.softmaxRows(scores, rows: length, columns: length)
                BLAS.gemm(
                    m: length, n: headSize, k: length, a: scores, lda: length, b: query + 2 * hidden, ldb: packed,
                    transposeB: false, c: context + row * hidden + head * headSize, ldc: hidden)
            }
            row += length
        }

        // Output projection onto the residual, then bias + LayerNorm back into `states`.
        let residual = workspace.residual.pointer
        residual.update(from: states, count: tokens * hidden)
        BLAS.gemm(
            m: tokens, n: hidden, k: hidden, a: context, lda: hidden, b: layer.attentionOutput.pointer, ldb: hidden,
            transposeB: true, beta: 1, c: residual, ldc: hidden)
        for row in 0..<tokens {
            Kernels.addBiasLayerNorm(
                residual + row * hidden, bias: layer.attentionOutputBias.pointer, gamma: layer.attentionNormGamma.pointer,
                beta: layer.attentionNormBeta.pointer, count: hidden, epsilon: configuration.layerNormEpsilon,
                output: states + row * hidden)
        }
    }

    /// `states ← LayerNorm(states + W₂ · GELU(W₁ · states))`, in blocks of rows so the wide intermediate
    /// activations stay small (and in cache) however many tokens the group has.
    private func feedForwardBlock(_ layer: Layer, tokens: Int, workspace: Workspace) {
        let hidden = configuration.hiddenSize
        let inner = configuration.intermediateSize
        let states = workspace.hidden.pointer
        let residual = workspace.residual.pointer
        let activations = workspace.intermediate.pointer
        var start = 0
        while start < tokens {
            let rows = min(Workspace.feedForwardRows, tokens - start)
            let block = states + start * hidden
            let blockResidual = residual + start * hidden
            BLAS.gemm(
                m: rows, n: inner, k: hidden, a: block, lda: hidden, b: layer.intermediate.pointer, ldb: hidden,
                transposeB: true, c: activations, ldc: inner)
            Kernels.addBiasGELU(activations, bias: layer.intermediateBias.pointer, rows: rows, columns: inner)
            blockResidual.update(from: block, count: rows * hidden)
            BLAS.gemm(
                m: rows, n: hidden, k: inner, a: activations, lda: inner, b: layer.output.pointer, ldb: inner,
                transposeB: true, beta: 1, c: blockResidual, ldc: hidden)
            for row in 0..<rows {
                Kernels.addBiasLayerNorm(
                    blockResidual + row * hidden, bias: layer.outputBias.pointer, gamma: layer.outputNormGamma.pointer,
                    beta: layer.outputNormBeta.pointer, count: hidden, epsilon: configuration.layerNormEpsilon,
                    output: block + row * hidden)
            }
            start += rows
        }
    }
}

/// Scratch memory for one forward pass at a time: grown to the largest group seen, then reused, so a
/// steady stream of batches allocates nothing. Not shared: a `Workspace` belongs to one thread while it
/// is in use (`SentenceEmbedder` hands them out through a lock).
final class Workspace: @unchecked Sendable {
    // @unchecked Sendable: only ever used by the one thread that took it from the embedder's pool; the
    // pool's lock orders the hand-over.

    /// Rows of the feed-forward block processed at once (keeps `intermediate` at 512 × 1536 floats).
    static let feedForwardRows = 512

    let hidden = ScratchBuffer()
    let qkv = ScratchBuffer()
    let context = ScratchBuffer()
    let residual = ScratchBuffer()
    let intermediate = ScratchBuffer()
    let scores = ScratchBuffer()

    /// Makes every buffer large enough for a group of `tokens` tokens whose longest text has `longest`.
    func prepare(tokens: Int, longest: Int, configuration: ModelConfiguration) {
        let hiddenSize = configuration.hiddenSize
        hidden.reserve(tokens * hiddenSize)
        qkv.reserve(tokens * 3 * hiddenSize)
        context.reserve(tokens * hiddenSize)
        residual.reserve(tokens * hiddenSize)
        intermediate.reserve(min(tokens, Self.feedForwardRows) * configuration.intermediateSize)
        scores.reserve(longest * longest)
    }

    /// Bytes held, for memory reports.
    var byteCount: Int {
        [hidden, qkv, context, residual, intermediate, scores].reduce(0) { $0 + $1.capacity * MemoryLayout<Float>.stride }
    }
}

/// A growable float array with a stable address: the one owner of its allocation, freed in `deinit`.
/// Growing discards the contents (the forward pass rewrites every buffer before reading it).
final class ScratchBuffer {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init() {
        capacity = 0
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    }

    deinit {
        pointer.deallocate()
    }

    /// Ensures room for `count` floats, reallocating (with some headroom) when needed.
    func reserve(_ count: Int) {
        guard count > capacity else { return }
        pointer.deallocate()
        capacity = max(count, capacity + capacity / 2)
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: capacity)
    }
}
