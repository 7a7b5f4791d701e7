/// The BERT encoder of a sentence-transformers model, with mean pooling and L2 normalisation: token ids in,
/// one unit vector per text out.
///
/// Texts are packed, not padded: a group of texts is one `[tokens × hidden]` matrix with each text's rows
/// next to each other, so every linear layer is a single large `sgemm` with no padding rows at all.
/// Attention runs per text and head on that text's rows only (`[L×32]·[32×L]`, softmax, `[L×L]·[L×32]`),
/// which is exactly what the padding mask achieves in a padded batch. Biases ride along for free: the
/// output is prefilled with the bias (or the residual) and `sgemm` accumulates onto it (`beta = 1`).
///
/// A pass split into parts (a few search queries) multiplies against weights packed once at load
/// (`PackedMatrix`) instead: OpenBLAS repacks the weights on every call, which dominated products that small.
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
        /// The six matrices packed once for small products (`PackedMatrix`); nil without AVX-512.
        var packed: PackedLayer?
    }

    /// A layer's weight matrices packed for `PackedMatrix.multiply`.
    struct PackedLayer: Sendable {
        let query: PackedMatrix
        let key: PackedMatrix
        let value: PackedMatrix
        let attentionOutput: PackedMatrix
        let intermediate: PackedMatrix
        let output: PackedMatrix

        init?(_ layer: Layer) {
            guard let query = PackedMatrix(layer.query), let key = PackedMatrix(layer.key), let value = PackedMatrix(layer.value),
                let attentionOutput = PackedMatrix(layer.attentionOutput), let intermediate = PackedMatrix(layer.intermediate),
                let output = PackedMatrix(layer.output)
            else { return nil }
            (self.query, self.key, self.value) = (query, key, value)
            (self.attentionOutput, self.intermediate, self.output) = (attentionOutput, intermediate, output)
        }
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
            layers[index].packed = PackedLayer(layers[index])
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
    ///
    /// `parts` > 1 splits every matrix product of the pass by output columns (attention and Q, K, V by heads) over
    /// that many threads, the caller's included: each thread multiplies by its share of each weight
    /// matrix, so the weights are read once per pass, not once per thread, and the products use the copies
    /// packed at load (`PackedLayer`). For small batches (search queries); large batches are better split
    /// by texts (`SentenceEmbedder`), which needs no synchronisation.
    func embed(
        _ texts: ArraySlice<TokenizedText>, workspace: Workspace, output: UnsafeMutablePointer<Float>, parts: Int = 1, team: WorkerTeam? = nil
    ) {
        let hidden = configuration.hiddenSize
        let tokens = texts.reduce(0) { $0 + $1.count }
        guard tokens > 0 else { return }
        let longest = texts.reduce(0) { max($0, $1.count) }
        let split = Split(parts: max(1, min(parts, configuration.headCount)), team: team)
        workspace.prepare(tokens: tokens, longest: longest, parts: split.parts, configuration: configuration)
        let states = workspace.hidden.pointer

        embedTokens(texts, into: states)
        for layer in weights.layers {
            // Split passes (small products) multiply against the copies packed at load.
            let packed = split.parts > 1 ? layer.packed : nil
            attentionBlock(layer, packed: packed, texts: texts, tokens: tokens, workspace: workspace, split: split)
            feedForwardBlock(layer, packed: packed, tokens: tokens, workspace: workspace, split: split)
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
    private func attentionBlock(
        _ layer: Layer, packed packedWeights: PackedLayer?, texts: ArraySlice<TokenizedText>, tokens: Int, workspace: Workspace, split: Split
    ) {
        let hidden = configuration.hiddenSize
        let headSize = configuration.headSize
        let packed = 3 * hidden
        let states = workspace.hidden.pointer
        let qkv = workspace.qkv.pointer
        let context = workspace.context.pointer
        let residual = workspace.residual.pointer

        // Each part takes a run of heads: their columns of Q, K and V (side by side in one [tokens × 3·hidden]
        // matrix, prefilled with the biases), then per text and head softmax(Q·Kᵀ / √d) · V into the heads'
        // columns of `context`. A head needs only its own columns, so the two steps need no join between them.
        let scale = 1 / Float(headSize).squareRoot()
        let parts = split.parts
        split.run { part in
            let heads = Self.evenShare(configuration.headCount, part: part, of: parts)
            guard !heads.isEmpty else { return }
            let columns = (heads.lowerBound * headSize)..<(heads.upperBound * headSize)
            layer.qkvBias.withUnsafeBufferPointer { bias in
                for row in 0..<tokens {
                    for offset in [0, hidden, 2 * hidden] {
                        (qkv + row * packed + offset + columns.lowerBound).update(
                            from: bias.baseAddress! + offset + columns.lowerBound, count: columns.count)
                    }
                }
            }
            for (offset, weight, packedWeight) in [
                (0, layer.query, packedWeights?.query), (hidden, layer.key, packedWeights?.key), (2 * hidden, layer.value, packedWeights?.value),
            ] {
                Self.linear(
                    rows: tokens, columns: columns, a: states, lda: hidden, weight: weight, packed: packedWeight, accumulate: true,
                    c: qkv + offset + columns.lowerBound, ldc: packed)
            }
            let scores = workspace.scores[part].pointer
            var row = 0
            for text in texts {
                let length = text.count
                for head in heads {
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
        }

        // Output projection onto the residual (by columns), then bias + LayerNorm back into `states`.
        split.run { part in
            let columns = Self.share(hidden, part: part, of: parts)
            guard !columns.isEmpty else { return }
            for row in 0..<tokens {
                (residual + row * hidden + columns.lowerBound).update(from: states + row * hidden + columns.lowerBound, count: columns.count)
            }
            Self.linear(
                rows: tokens, columns: columns, a: context, lda: hidden, weight: layer.attentionOutput,
                packed: packedWeights?.attentionOutput, accumulate: true, c: residual + columns.lowerBound, ldc: hidden)
        }
        for row in 0..<tokens {
            Kernels.addBiasLayerNorm(
                residual + row * hidden, bias: layer.attentionOutputBias.pointer, gamma: layer.attentionNormGamma.pointer,
                beta: layer.attentionNormBeta.pointer, count: hidden, epsilon: configuration.layerNormEpsilon,
                output: states + row * hidden)
        }
    }

    /// `states ← LayerNorm(states + W₂ · GELU(W₁ · states))`, in blocks of rows so the wide intermediate
    /// activations stay small (and in cache) however many tokens the group has.
    private func feedForwardBlock(_ layer: Layer, packed: PackedLayer?, tokens: Int, workspace: Workspace, split: Split) {
        let hidden = configuration.hiddenSize
        let inner = configuration.intermediateSize
        let states = workspace.hidden.pointer
        let residual = workspace.residual.pointer
        let activations = workspace.intermediate.pointer
        let parts = split.parts
        var start = 0
        while start < tokens {
            let rows = min(Workspace.feedForwardRows, tokens - start)
            let block = states + start * hidden
            let blockResidual = residual + start * hidden
            split.run { part in
                let columns = Self.share(inner, part: part, of: parts)
                guard !columns.isEmpty else { return }
                Self.linear(
                    rows: rows, columns: columns, a: block, lda: hidden, weight: layer.intermediate,
                    packed: packed?.intermediate, accumulate: false, c: activations + columns.lowerBound, ldc: inner)
                Kernels.addBiasGELU(
                    activations + columns.lowerBound, bias: layer.intermediateBias.pointer + columns.lowerBound, rows: rows,
                    columns: columns.count, stride: inner)
            }
            split.run { part in
                let columns = Self.share(hidden, part: part, of: parts)
                guard !columns.isEmpty else { return }
                for row in 0..<rows {
                    (blockResidual + row * hidden + columns.lowerBound).update(
                        from: block + row * hidden + columns.lowerBound, count: columns.count)
                }
                Self.linear(
                    rows: rows, columns: columns, a: activations, lda: inner, weight: layer.output,
                    packed: packed?.output, accumulate: true, c: blockResidual + columns.lowerBound, ldc: hidden)
            }
            for row in 0..<rows {
                Kernels.addBiasLayerNorm(
                    blockResidual + row * hidden, bias: layer.outputBias.pointer, gamma: layer.outputNormGamma.pointer,
                    beta: layer.outputNormBeta.pointer, count: hidden, epsilon: configuration.layerNormEpsilon,
                    output: block + row * hidden)
            }
            start += rows
        }
    }

    /// `c (+)= a · weightᵀ` for the output columns `columns` (`c` points at the first of them): against the
    /// packed copy when given (split passes: small products, see `PackedMatrix`), else through OpenBLAS.
    private static func linear(
        rows: Int, columns: Range<Int>, a: UnsafePointer<Float>, lda: Int, weight: Tensor, packed: PackedMatrix?, accumulate: Bool,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if let packed, packed.multiply(rows: rows, columns: columns, a: a, lda: lda, accumulate: accumulate, c: c, ldc: ldc) { return }
        let depth = weight.shape[1]
        BLAS.gemm(
            m: rows, n: columns.count, k: depth, a: a, lda: lda, b: weight.pointer + columns.lowerBound * depth, ldb: depth,
            transposeB: true, beta: accumulate ? 1 : 0, c: c, ldc: ldc)
    }

    /// How the steps of a pass are split: into `parts` (1: not at all), run on `team` (the caller's thread
    /// and the team's helpers; without a team, on Dispatch's threads).
    ///
    /// The parts share the pass's buffers through raw pointers, which are not `Sendable`: this is the one
    /// place that hands them to other threads. It is safe because the parts write disjoint columns (or
    /// heads) and `run` returns only after every part has finished.
    struct Split {
        let parts: Int
        let team: WorkerTeam?

        /// Runs `body` for parts `0..<parts` at once, the calling thread taking parts too, and returns when
        /// all are done: the steps of the pass depend on each other. On a busy machine the parts only lose
        /// their parallelism (a thread takes the next part when it is free).
        @inline(__always)
        func run(_ body: (Int) -> Void) {
            if parts == 1 {
                body(0)
            } else if let team {
                team.run(parts: parts, body)
            } else {
                WorkerTeam.onDispatch(parts: parts, body)
            }
        }
    }

    /// Part `part`'s share of `count` items (heads), as even as it gets.
    static func evenShare(_ count: Int, part: Int, of parts: Int) -> Range<Int> {
        (part * count / parts)..<((part + 1) * count / parts)
    }

    /// Part `part`'s columns of `count`, in runs of 16 (whole AVX-512 registers) except the last.
    static func share(_ count: Int, part: Int, of parts: Int) -> Range<Int> {
        let size = ((count + parts - 1) / parts + 15) / 16 * 16
        let lower = min(count, part * size)
        return lower..<min(count, lower + size)
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
    /// Attention scores, one buffer per part of a split pass.
    private(set) var scores: [ScratchBuffer] = [ScratchBuffer()]

    /// Makes every buffer large enough for a group of `tokens` tokens whose longest text has `longest`,
    /// computed in `parts` parts.
    func prepare(tokens: Int, longest: Int, parts: Int = 1, configuration: ModelConfiguration) {
        while scores.count < parts { scores.append(ScratchBuffer()) }
        let hiddenSize = configuration.hiddenSize
        hidden.reserve(tokens * hiddenSize)
        qkv.reserve(tokens * 3 * hiddenSize)
        context.reserve(tokens * hiddenSize)
        residual.reserve(tokens * hiddenSize)
        intermediate.reserve(min(tokens, Self.feedForwardRows) * configuration.intermediateSize)
        for buffer in scores.prefix(parts) { buffer.reserve(longest * longest) }
    }

    /// Bytes held, for memory reports.
    var byteCount: Int {
        ([hidden, qkv, context, residual, intermediate] + scores).reduce(0) { $0 + $1.capacity * MemoryLayout<Float>.stride }
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
