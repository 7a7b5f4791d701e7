import ArgumentParser
import Foundation
import Search
import Storage

struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score search on BEIR-format queries and qrels: nDCG@10, recall@100, MRR@10 (by external id).")
    @OptionGroup var options: GlobalOptions
    @Option(help: "Organisation slug (import the corpus with `import DIR --format beir`).") var org: String
    @Option(help: "queries.jsonl ({\"_id\", \"text\"} per line).") var queries: String
    @Option(help: "qrels TSV (query-id, corpus-id, score; header line).") var qrels: String
    @Option(help: "hybrid, keyword or semantic (default: hybrid when the model is configured, else keyword).") var mode: SearchMode?
    @Option(help: "Queries in flight at once.") var concurrency = 4
    @Flag(help: "Print {\"queries\", \"ndcg@10\", \"recall@100\", \"mrr@10\"} as JSON.") var json = false

    func run() async throws {
        let allQueries = try BEIRFiles.queries(path: queries)
        let judgements = try BEIRFiles.qrels(path: qrels)
        let judged = allQueries.filter { judgements[$0.id] != nil }
        try await Services.with(options) { services in
            let organization = try await services.organization(org)
            let service = try await services.searchService(longRunning: true)
            try await service.warmUp(orgID: organization.id)
            let mode = mode ?? (service.hasSemanticLeg ? .hybrid : .keyword)
            let progress = ProgressLine()
            let rankings = try await withThrowingTaskGroup(of: (String, [String]).self) { group in
                var rankings: [String: [String]] = [:]
                var iterator = judged.makeIterator()
                func add() -> Bool {
                    guard let (id, text) = iterator.next() else { return false }
                    group.addTask {
                        let response = try await service.search(SearchRequest(query: text, mode: mode, limit: 100), orgID: organization.id)
                        return (id, response.results.map { $0.externalID ?? $0.documentID.uuidString.lowercased() })
                    }
                    return true
                }
                for _ in 0..<max(1, concurrency) where add() {}
                while let (id, ranking) = try await group.next() {
                    rankings[id] = ranking
                    progress.update("\(rankings.count)/\(judged.count) queries")
                    _ = add()
                }
                return rankings
            }
            progress.finish()
            let summary = RetrievalMetrics.summarize(rankings: rankings, qrels: judgements.filter { key, _ in judged.contains { $0.id == key } })
            if json {
                try printJSON(summary)
            } else {
                print(String(format: "%@ over %d queries: nDCG@10 %.4f  recall@100 %.4f  MRR@10 %.4f", mode.rawValue, summary.queries, summary.ndcg10, summary.recall100, summary.mrr10))
            }
        }
    }
}
