import Foundation

/// Writes `count` generated text documents (about 1–2 KB, distinct) into a new temporary folder.
func generateTextCorpus(count: Int, seed: UInt64 = 42, extraFiles: [String: [UInt8]] = [:]) throws -> String {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("corpus-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: folder + "/nested", withIntermediateDirectories: true)
    var generator = SeededGenerator(seed: seed)
    let words = [
        "protein", "cell", "membrane", "signal", "pathway", "receptor", "kinase", "enzyme", "binding", "structure",
        "analysis", "cohort", "patients", "clinical", "trial", "outcome", "risk", "gene", "expression", "mutation",
        "tissue", "model", "response", "immune", "therapy", "dose", "effect", "study", "sample", "measure",
        "river", "mountain", "forest", "ocean", "climate", "energy", "market", "policy", "network", "system",
    ]
    for index in 0..<count {
        var paragraphs: [String] = []
        let paragraphCount = Int.random(in: 2...4, using: &generator)
        for _ in 0..<paragraphCount {
            var sentences: [String] = []
            for _ in 0..<Int.random(in: 3...6, using: &generator) {
                let length = Int.random(in: 6...14, using: &generator)
                var sentence = (0..<length).map { _ in words.randomElement(using: &generator)! }.joined(separator: " ")
                sentence = sentence.prefix(1).uppercased() + sentence.dropFirst() + "."
                sentences.append(sentence)
            }
            paragraphs.append(sentences.joined(separator: " "))
        }
        let text = "Document number \(index) token\(index)x\n\n" + paragraphs.joined(separator: "\n\n") + "\n"
        let subfolder = index % 2 == 0 ? "" : "nested/"
        try text.write(toFile: "\(folder)/\(subfolder)doc-\(index).txt", atomically: true, encoding: .utf8)
    }
    for (name, bytes) in extraFiles {
        _ = FileManager.default.createFile(atPath: "\(folder)/\(name)", contents: Data(bytes))
    }
    return folder
}

struct SeededGenerator: RandomNumberGenerator {
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
