import Foundation

/// Writes a generated corpus of text, Markdown and HTML documents on a handful of topics, so the demo and
/// the benchmark need no data from outside the project. Deterministic for a given seed.
public enum SampleCorpus {
    struct Topic {
        let name: String
        let titles: [String]
        let words: [String]
    }

    static let topics: [Topic] = [
        Topic(name: "astronomy", titles: ["Solar eclipse observations", "Exoplanet transit survey", "Comet orbit notes", "Galaxy rotation curves"],
              words: ["telescope", "orbit", "eclipse", "planet", "star", "galaxy", "comet", "nebula", "spectrum", "luminosity", "transit", "moon", "solar", "gravity"]),
        Topic(name: "cooking", titles: ["Sourdough bread method", "Tomato sauce basics", "Fermented vegetables", "Braised lentil stew"],
              words: ["flour", "yeast", "dough", "oven", "simmer", "garlic", "tomato", "salt", "ferment", "knead", "lentil", "broth", "basil", "crust"]),
        Topic(name: "finance", titles: ["Quarterly revenue report", "Invoice reconciliation", "Budget forecast", "Audit findings"],
              words: ["revenue", "invoice", "budget", "forecast", "ledger", "audit", "expense", "margin", "quarter", "payment", "balance", "cash", "tax", "account"]),
        Topic(name: "medicine", titles: ["Clinical trial summary", "Vaccine response study", "Cardiology case notes", "Antibiotic resistance review"],
              words: ["patient", "trial", "vaccine", "dose", "antibody", "cardiac", "symptom", "therapy", "infection", "antibiotic", "cohort", "placebo", "diagnosis", "clinic"]),
        Topic(name: "software", titles: ["Release notes", "Incident postmortem", "Database migration plan", "API design review"],
              words: ["server", "database", "latency", "deploy", "queue", "cache", "request", "schema", "migration", "incident", "rollback", "endpoint", "thread", "compiler"]),
    ]

    static let glue = ["the", "of", "and", "with", "for", "a", "in", "after", "before", "during", "our", "this", "each", "every"]

    /// Writes `count` documents into `folder` (created if needed) and returns their paths.
    @discardableResult
    public static func write(count: Int, to folder: String, seed: UInt64 = 1, formats: Bool = true) throws -> [String] {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var random = SplitMix(seed: seed)
        var paths: [String] = []
        for index in 0..<count {
            let topic = topics[index % topics.count]
            let title = "\(topic.titles[Int(random.next() % UInt64(topic.titles.count))]) #\(index)"
            var paragraphs: [String] = []
            for _ in 0..<(2 + Int(random.next() % 3)) {
                var sentences: [String] = []
                for _ in 0..<(3 + Int(random.next() % 4)) {
                    var words: [String] = []
                    for position in 0..<(7 + Int(random.next() % 9)) {
                        let pool = position % 3 == 1 ? glue : topic.words
                        words.append(pool[Int(random.next() % UInt64(pool.count))])
                    }
                    let sentence = words.joined(separator: " ")
                    sentences.append(sentence.prefix(1).uppercased() + sentence.dropFirst() + ".")
                }
                paragraphs.append(sentences.joined(separator: " "))
            }
            let kind = formats ? index % 5 : 0
            let folderName = "\(folder)/\(topic.name)"
            try FileManager.default.createDirectory(atPath: folderName, withIntermediateDirectories: true)
            let path: String
            let body: String
            switch kind {
            case 3:
                path = "\(folderName)/doc-\(index).md"
                body = "# \(title)\n\n" + paragraphs.joined(separator: "\n\n") + "\n"
            case 4:
                path = "\(folderName)/doc-\(index).html"
                body = "<!DOCTYPE html><html><head><title>\(title)</title><style>p{margin:0}</style></head><body><h1>\(title)</h1>"
                    + paragraphs.map { "<p>\($0)</p>" }.joined() + "<script>trackingPixel()</script></body></html>\n"
            default:
                path = "\(folderName)/doc-\(index).txt"
                body = "\(title)\n\n" + paragraphs.joined(separator: "\n\n") + "\n"
            }
            try body.write(toFile: path, atomically: false, encoding: .utf8)
            paths.append(path)
        }
        return paths
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
