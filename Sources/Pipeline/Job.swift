public import Foundation

/// The job envelope: the only thing that travels in a message (DESIGN.md, Messages). A stage reads what
/// it needs from PostgreSQL and the blob store, so messages stay small and a replay sees current data.
public struct Job: Sendable, Codable, Equatable {
    public static let currentVersion = 1

    public var version: Int
    public var jobID: UUID
    public var orgID: UUID
    public var documentID: UUID
    public var stage: String
    /// 1 for the first try; incremented when the job goes through a retry queue.
    public var attempt: Int
    public var enqueuedAt: Date
    /// W3C trace context, carried from the import to every stage's log lines.
    public var traceparent: String

    enum CodingKeys: String, CodingKey {
        case version = "v", jobID = "job_id", orgID = "org_id", documentID = "document_id", stage, attempt
        case enqueuedAt = "enqueued_at", traceparent
    }

    public init(orgID: UUID, documentID: UUID, stage: String, attempt: Int = 1, traceparent: String = Job.newTraceparent()) {
        self.version = Self.currentVersion
        self.jobID = UUID()
        self.orgID = orgID
        self.documentID = documentID
        self.stage = stage
        self.attempt = attempt
        self.enqueuedAt = Date()
        self.traceparent = traceparent
    }

    /// The job for the next stage of the same document: a new job id, the same trace.
    public func next(stage: String) -> Job {
        Job(orgID: orgID, documentID: documentID, stage: stage, attempt: 1, traceparent: traceparent)
    }

    /// The same job again after a failure.
    public func retried() -> Job {
        var job = self
        job.attempt += 1
        job.enqueuedAt = Date()
        return job
    }

    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        // Encoding a struct of strings, UUIDs and numbers cannot fail.
        return [UInt8]((try? encoder.encode(self)) ?? Data())
    }

    public static func decode(_ bytes: [UInt8]) throws(PipelineError) -> Job {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let job: Job
        do {
            job = try decoder.decode(Job.self, from: Data(bytes))
        } catch {
            let preview = String(decoding: bytes.prefix(120), as: UTF8.self)
            throw PipelineError(code: .malformedJob, message: "malformed job envelope (\(error)): \(preview)")
        }
        guard job.version == currentVersion else {
            throw PipelineError(code: .malformedJob, message: "job envelope version \(job.version) is not supported (expected \(currentVersion))")
        }
        guard job.attempt >= 1 else {
            throw PipelineError(code: .malformedJob, message: "job envelope has attempt \(job.attempt); attempts start at 1")
        }
        return job
    }

    /// A fresh W3C `traceparent` (version 00, random trace and span ids, sampled).
    public static func newTraceparent() -> String {
        func hex(_ count: Int) -> String {
            (0..<count).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
        }
        return "00-\(hex(16))-\(hex(8))-01"
    }
}
