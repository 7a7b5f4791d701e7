/// How big chunks are and how much consecutive chunks share. Sizes are in the unit of the chunker's
/// `ChunkSizeMeasure` (tokens for `ApproximateTokenMeasure`, characters for `CharacterMeasure`).
public struct ChunkingOptions: Sendable, Equatable {
    /// The largest chunk, by the measure. Default 200 tokens: well inside a 256- or 512-token embedding
    /// window with room for the model's special tokens, and small enough that one chunk is about one idea.
    public var maxSize: Int
    /// Roughly how much of the end of one chunk is repeated at the start of the next, so that a sentence
    /// cut by a chunk boundary is still whole somewhere. Default 30 (15 % of the default size). Capped at
    /// half of `maxSize`: more would make most text appear in three chunks.
    public var overlap: Int

    /// - Precondition: `maxSize` ≥ 1 and `overlap` ≥ 0.
    public init(maxSize: Int = 200, overlap: Int = 30) {
        precondition(maxSize >= 1, "ChunkingOptions.maxSize must be at least 1")
        precondition(overlap >= 0, "ChunkingOptions.overlap must not be negative")
        self.maxSize = maxSize
        self.overlap = overlap
    }

    /// The budget actually used: the properties are settable, so the initialiser's checks can be bypassed.
    var effectiveMaxSize: Int { max(1, maxSize) }

    /// The overlap actually used: `overlap`, capped at half of `maxSize`.
    var effectiveOverlap: Int { min(max(0, overlap), effectiveMaxSize / 2) }
}
