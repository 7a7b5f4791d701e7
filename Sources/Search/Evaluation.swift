import Foundation

/// Retrieval quality over BEIR-style judgements, scored at the document level by external id, the way
/// trec_eval / pytrec_eval do (linear gain for nDCG; queries without judgements are skipped).
public enum RetrievalMetrics {
    public struct Summary: Sendable, Codable, Equatable {
        public var queries: Int
        public var ndcg10: Double
        public var recall100: Double
        public var mrr10: Double

        enum CodingKeys: String, CodingKey {
            case queries, ndcg10 = "ndcg@10", recall100 = "recall@100", mrr10 = "mrr@10"
        }
    }

    /// nDCG@k of one ranking against graded judgements (relevance > 0 counts).
    public static func ndcg(ranking: [String], judgements: [String: Int], k: Int = 10) -> Double {
        var dcg = 0.0
        for (index, id) in ranking.prefix(k).enumerated() {
            let gain = Double(max(judgements[id] ?? 0, 0))
            dcg += gain / log2(Double(index) + 2)
        }
        let ideal = judgements.values.filter { $0 > 0 }.sorted(by: >).prefix(k)
        var idcg = 0.0
        for (index, rel) in ideal.enumerated() { idcg += Double(rel) / log2(Double(index) + 2) }
        return idcg > 0 ? dcg / idcg : 0
    }

    public static func recall(ranking: [String], judgements: [String: Int], k: Int = 100) -> Double {
        let relevant = Set(judgements.filter { $0.value > 0 }.keys)
        guard !relevant.isEmpty else { return 0 }
        return Double(Set(ranking.prefix(k)).intersection(relevant).count) / Double(relevant.count)
    }

    public static func reciprocalRank(ranking: [String], judgements: [String: Int], k: Int = 10) -> Double {
        for (index, id) in ranking.prefix(k).enumerated() where (judgements[id] ?? 0) > 0 {
            return 1 / Double(index + 1)
        }
        return 0
    }

    /// Averages over the queries that have judgements.
    public static func summarize(rankings: [String: [String]], qrels: [String: [String: Int]]) -> Summary {
        var summary = Summary(queries: 0, ndcg10: 0, recall100: 0, mrr10: 0)
        for (query, judgements) in qrels where judgements.values.contains(where: { $0 > 0 }) {
            let ranking = rankings[query] ?? []
            summary.queries += 1
            summary.ndcg10 += ndcg(ranking: ranking, judgements: judgements)
            summary.recall100 += recall(ranking: ranking, judgements: judgements)
            summary.mrr10 += reciprocalRank(ranking: ranking, judgements: judgements)
        }
        if summary.queries > 0 {
            let n = Double(summary.queries)
            summary.ndcg10 /= n
            summary.recall100 /= n
            summary.mrr10 /= n
        }
        return summary
    }
}

/// BEIR files: `queries.jsonl` (`{"_id", "text"}` per line) and qrels TSV (`query-id corpus-id score` with
/// a header line).
public enum BEIRFiles {
    public static func queries(path: String) throws -> [(id: String, text: String)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SearchError(field: "queries", message: "cannot read \(path)")
        }
        struct Line: Decodable {
            let id: String
            let text: String
            enum CodingKeys: String, CodingKey { case id = "_id", text }
        }
        var result: [(String, String)] = []
        for (number, line) in data.split(separator: 0x0A).enumerated() where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
            guard let parsed = try? JSONDecoder().decode(Line.self, from: Data(line)) else {
                throw SearchError(field: "queries", message: "\(path):\(number + 1): not a {\"_id\", \"text\"} line")
            }
            result.append((parsed.id, parsed.text))
        }
        return result
    }

    public static func qrels(path: String) throws -> [String: [String: Int]] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw SearchError(field: "qrels", message: "cannot read \(path)")
        }
        var qrels: [String: [String: Int]] = [:]
        for (number, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init)
            if number == 0 && fields.first == "query-id" { continue }
            guard fields.count >= 3, let score = Int(fields[fields.count - 1]) else {
                throw SearchError(field: "qrels", message: "\(path):\(number + 1): expected query-id, corpus-id, score")
            }
            qrels[fields[0], default: [:]][fields[1]] = score
        }
        return qrels
    }
}
