import Embedding
import Testing

/// Parity with the model's own implementation (Hugging Face tokenizers + sentence-transformers on
/// PyTorch) on the shared reference set: identical ids, and cosine ≥ 0.9999 for every text.
@Suite struct ReferenceParityTests {
    @Test func tokensAreIdenticalForEveryReferenceText() throws {
        let embedder = try ModelFixture.requireEmbedder()
        let texts = try ModelFixture.referenceTexts()
        let expected = try ModelFixture.reference("tokens.jsonl")
        try #require(expected.count > 200, "the reference set lost its texts")
        var mismatches: [Int] = []
        for (id, reference) in expected.sorted(by: { $0.key < $1.key }) {
            let text = try #require(texts[id], "no input text for id \(id)")
            let encoded = embedder.tokenizer.encode(text)
            if encoded.ids != reference.inputIDs {
                mismatches.append(id)
            }
            #expect(encoded.attentionMask == Array(repeating: 1, count: encoded.count))
        }
        #expect(mismatches.isEmpty, "token mismatches for ids \(mismatches)")
    }

    @Test func embeddingsMatchForEveryReferenceText() throws {
        let embedder = try ModelFixture.requireEmbedder()
        let texts = try ModelFixture.referenceTexts().sorted { $0.key < $1.key }
        let expected = try ModelFixture.reference("embeddings.jsonl")
        let vectors = embedder.embed(texts.map(\.value))
        var lowest = (cosine: 1.0, id: 0)
        for ((id, _), vector) in zip(texts, vectors) {
            let reference = try #require(expected[id]?.embedding, "no reference embedding for id \(id)")
            #expect(vector.count == 384)
            let similarity = cosine(vector, reference)
            #expect(similarity >= 0.9999, "id \(id): cosine \(similarity)")
            #expect(abs(norm(vector) - 1) <= 1e-4, "id \(id): norm \(norm(vector))")
            if similarity < lowest.cosine {
                lowest = (similarity, id)
            }
        }
        // A correct float32 forward pass lands far closer than the bar; say how close, for the record.
        print("embedding parity: \(texts.count) texts, lowest cosine \(lowest.cosine) (id \(lowest.id))")
    }
}
