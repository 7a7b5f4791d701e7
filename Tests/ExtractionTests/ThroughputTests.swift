import Testing

@testable import Chunking
@testable import Extraction

/// Prints throughput for the text path of the pipeline; never asserts on time (timings belong to
/// `intellidocs bench`, and CI machines vary). Build with `-c release` for meaningful numbers.
@Suite("Throughput")
struct ThroughputTests {
    @Test func chunkingFiveThousandTwoKilobyteDocuments() {
        let documents = (0..<5000).map { Prose.text(characters: 2048, seed: UInt64($0)) }
        let bytes = documents.map { Array($0.utf8) }
        let clock = ContinuousClock()

        for (name, measure) in [("tokens", ApproximateTokenMeasure()), ("characters", CharacterMeasure())]
            as [(String, any ChunkSizeMeasure)]
        {
            let chunker = Chunker(options: ChunkingOptions(), measure: measure)
            var chunkCount = 0
            let elapsed = clock.measure {
                for document in documents {
                    chunkCount += chunker.chunks(pages: [(1, document)]).count
                }
            }
            report(
                "chunk (\(name) measure)", elapsed: elapsed, documents: documents.count, extra: "\(chunkCount) chunks")
        }

        let chunker = Chunker(options: ChunkingOptions(), measure: ApproximateTokenMeasure())
        var chunkCount = 0
        let elapsed = clock.measure {
            for document in bytes {
                let kind = TypeSniffer.sniff(document, fileName: "doc.txt").kind
                guard let pages = try? TextExtractor.extract(document, kind: kind) else { continue }
                chunkCount += chunker.chunks(pages: pages.map { ($0.number, $0.text) }).count
            }
        }
        report("sniff + extract + chunk", elapsed: elapsed, documents: bytes.count, extra: "\(chunkCount) chunks")
    }

    private func report(_ stage: String, elapsed: Duration, documents: Int, extra: String) {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let perDocument = seconds / Double(documents) * 1e6
        let rate = Double(documents) / seconds
        print(
            "throughput: \(stage): \(documents) × 2 KB in \(Int(seconds * 1000)) ms, "
                + "\(Int(perDocument.rounded())) µs/document, \(Int(rate)) documents/s (\(extra))")
    }
}
