import Embedding
import Foundation
import Testing

@Suite struct SentenceEmbedderTests {
    @Test func similarSentencesScoreHigherThanUnrelatedOnes() throws {
        let embedder = try ModelFixture.requireEmbedder()
        let vectors = embedder.embed([
            "The cat sits on the mat.",
            "A kitten is resting on a rug.",
            "Quarterly revenue grew by twelve percent.",
            "How do I reset my password?",
            "I forgot my login credentials and need to change them.",
            "The volcano erupted and covered the village in ash.",
        ])
        #expect(vectors.allSatisfy { $0.count == embedder.dimension })
        let cats = cosine(vectors[0], vectors[1])
        #expect(cats > cosine(vectors[0], vectors[2]))
        #expect(cats > cosine(vectors[1], vectors[5]))
        let passwords = cosine(vectors[3], vectors[4])
        #expect(passwords > cosine(vectors[3], vectors[2]))
        #expect(passwords > cosine(vectors[4], vectors[0]))
        #expect(cats > 0.5 && passwords > 0.5)
    }

    @Test func groupingAndThreadsDoNotChangeTheVectors() throws {
        let embedder = try ModelFixture.requireEmbedder()
        // Mixed lengths, so length bucketing reorders them, plus duplicates and an empty text. Vectors agree
        // to float rounding, not bit for bit: a row's position in a matrix product changes the summation order.
        var texts = try ModelFixture.referenceTexts().sorted { $0.key < $1.key }.map(\.value).prefix(60).map { $0 }
        texts += ["", texts[3], "short", texts[10]]
        let together = embedder.embed(texts, batchSize: 32)
        let small = embedder.embed(texts, batchSize: 3)
        let alone = texts.map { embedder.embed([$0], batchSize: 1)[0] }
        let oneThread = try SentenceEmbedder(modelDirectory: #require(ModelFixture.modelDirectory), threads: 1)
            .embed(texts, batchSize: 16)
        #expect(together.count == texts.count)
        for index in texts.indices {
            #expect(cosine(together[index], alone[index]) > 0.999_999, "text \(index)")
            #expect(cosine(small[index], alone[index]) > 0.999_999, "text \(index)")
            #expect(cosine(oneThread[index], alone[index]) > 0.999_999, "text \(index)")
            let largest = zip(together[index], alone[index]).map { abs($0 - $1) }.max() ?? 0
            #expect(largest < 1e-5, "text \(index): max |Δ| \(largest)")
        }
    }

    /// A small batch runs as one pass split over the threads (by output columns and heads); uneven splits
    /// (3 and 5 parts of 384 columns and 12 heads) must give the vectors of an unsplit pass.
    @Test(arguments: [2, 3, 5])
    func aPassSplitOverThreadsGivesTheSameVectors(threads: Int) throws {
        let directory = try #require(ModelFixture.modelDirectory)
        let texts = [
            "0-dimensional biomaterials show inductive properties.", "short", "",
            "A deficiency of vitamin B12 increases blood levels of homocysteine.",
            "The quick brown fox jumps over the lazy dog while the cat sleeps on the mat in the sun.",
        ]
        let unsplit = try SentenceEmbedder(modelDirectory: directory, threads: 1).embed(texts)
        let split = try SentenceEmbedder(modelDirectory: directory, threads: threads).embed(texts)
        #expect(split.count == texts.count)
        for index in texts.indices {
            let largest = zip(split[index], unsplit[index]).map { abs($0 - $1) }.max() ?? 1
            #expect(largest < 1e-5, "text \(index), \(threads) parts: max |Δ| \(largest)")
        }
    }

    @Test func concurrentCallsAreSafe() throws {
        let embedder = try ModelFixture.requireEmbedder()
        let texts = ["alpha beta gamma", "the quick brown fox jumps over the lazy dog", "vectors and matrices"]
        let expected = embedder.embed(texts)
        let results = Results()
        // Plain threads, as a worker would call it: `embed` blocks, so it stays off the cooperative pool.
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            results.append(embedder.embed(texts, batchSize: 2))
        }
        #expect(results.all.count == 4)
        for vectors in results.all {
            for (vector, reference) in zip(vectors, expected) {
                #expect(cosine(vector, reference) > 0.999_999)
            }
        }
    }

    /// Results collected from several threads.
    private final class Results: @unchecked Sendable {
        // @unchecked Sendable: `vectors` is only touched under `lock`.
        private let lock = NSLock()
        private var vectors: [[[Float]]] = []

        func append(_ result: [[Float]]) {
            lock.withLock { vectors.append(result) }
        }

        var all: [[[Float]]] { lock.withLock { vectors } }
    }

    @Test func overlongTokenizedTextsAreCutLikeTexts() throws {
        let embedder = try ModelFixture.requireEmbedder()
        let text = Array(repeating: "embedding models read at most two hundred fifty six positions", count: 60).joined(separator: " ")
        let long = embedder.tokenizer.encode(text, maxLength: 512)
        #expect(long.count == 512)
        let fromTokens = embedder.embed(tokenized: [long])[0]
        let fromText = embedder.embed([text])[0]
        #expect(cosine(fromTokens, fromText) > 0.999_999)
    }

    @Test func emptyInputGivesNoVectors() throws {
        let embedder = try ModelFixture.requireEmbedder()
        #expect(embedder.embed([]).isEmpty)
    }

    @Test func describesTheModel() throws {
        let embedder = try ModelFixture.requireEmbedder()
        #expect(SentenceEmbedder.modelName == "all-MiniLM-L6-v2")
        #expect(embedder.dimension == 384)
        #expect(embedder.configuration.layerCount == 6)
        #expect(embedder.configuration.maxSequenceLength == 256)
        #expect(embedder.tokenizer.vocabularySize == 30_522)
    }
}
