import Foundation
import Logging
import PostgresNIO
import Similarity
import Storage

/// Marks documents whose text is at least `threshold` similar (Jaccard over 5-word shingles) to an older
/// document of the same organisation as `near_duplicate_of` it. Runs in the chunk stage's transaction,
/// after text extraction and OCR, so scans are compared by their recognised text.
///
/// Candidates come from MinHash LSH buckets in PostgreSQL and from earlier documents of the same batch;
/// each candidate is then checked exactly against its stored text. The older document of a pair is the
/// original; when the newer one was chunked first (documents do not finish in import order), the older
/// one marks it when its own turn comes. Decisions of one organisation are serialised by an advisory lock,
/// so concurrent batches cannot both miss a pair.
struct NearDuplicateDetector: Sendable {
    /// A document's fingerprint, computed outside the transaction (`prepare`).
    struct Fingerprint: Sendable {
        let shingles: ShingleSet
        let bandKeys: [Int64]
    }

    let threshold: Double
    let hasher = MinHasher()

    init(threshold: Double = 0.9) {
        self.threshold = threshold
    }

    func fingerprint(pages: [String]) -> Fingerprint {
        let shingles = ShingleSet(text: pages.joined(separator: "\n\n"))
        return Fingerprint(shingles: shingles, bandKeys: hasher.bandKeys(of: hasher.signature(of: shingles)))
    }

    /// Records the band keys of `documents` and sets or clears their near-duplicate marks.
    func record(_ documents: [(id: UUID, fingerprint: Fingerprint)], orgID: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        if documents.isEmpty { return }
        let repository = NearDuplicateRepository(logger: logger)
        try await repository.lockOrganization(orgID, on: connection)
        let ages = try await repository.ages(of: documents.map(\.id), orgID: orgID, on: connection)
        let stored = try await repository.candidates(for: documents.map { ($0.id, $0.fingerprint.bandKeys) }, orgID: orgID, on: connection)
        let batchIDs = Set(documents.map(\.id))
        let storedIDs = Set(stored.values.flatMap { $0.map(\.id) }).subtracting(batchIDs)
        var shinglesByID: [UUID: ShingleSet] = [:]
        for (id, text) in try await repository.texts(of: Array(storedIDs), orgID: orgID, on: connection) {
            shinglesByID[id] = ShingleSet(text: text)
        }
        for document in documents { shinglesByID[document.id] = document.fingerprint.shingles }

        // Documents in age order, so that within the batch the older of a pair is decided first.
        let ordered = documents.filter { ages[$0.id] != nil }.sorted { ages[$0.id]!.isOlder(than: ages[$1.id]!) }
        var seen: [(age: DocumentAge, bandKeys: [Int64])] = []
        var marks: [UUID: (original: UUID?, similarity: Double?)] = [:]
        for document in ordered {
            let age = ages[document.id]!
            let keys = document.fingerprint.bandKeys
            var candidates = stored[document.id, default: []].filter { !batchIDs.contains($0.id) }
            for earlier in seen where zip(earlier.bandKeys, keys).contains(where: { $0 == $1 }) {
                candidates.append(earlier.age)
            }
            seen.append((age, keys))

            var best: (candidate: DocumentAge, similarity: Double)?
            for candidate in candidates {
                guard let theirs = shinglesByID[candidate.id] else { continue }
                let similarity = document.fingerprint.shingles.jaccard(theirs)
                guard similarity >= threshold else { continue }
                if candidate.isOlder(than: age) {
                    if best == nil || similarity > best!.similarity || (similarity == best!.similarity && candidate.isOlder(than: best!.candidate)) {
                        best = (candidate, similarity)
                    }
                } else if candidate.nearDuplicateOf == nil, marks[candidate.id] == nil {
                    // A newer document chunked before this one: it is the near duplicate.
                    marks[candidate.id] = (document.id, similarity)
                }
            }
            if best != nil || age.nearDuplicateOf != nil {
                marks[document.id] = (best?.candidate.id, best?.similarity)
            }
        }
        try await repository.replaceBandKeys(documents.map { ($0.id, $0.fingerprint.bandKeys) }, orgID: orgID, on: connection)
        try await repository.mark(marks.map { ($0.key, $0.value.original, $0.value.similarity) }, orgID: orgID, on: connection)
    }
}
