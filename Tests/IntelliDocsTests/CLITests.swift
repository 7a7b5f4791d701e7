import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Storage
import Testing
import TestSupport

/// The `intellidocs` binary as a person runs it: JSON shapes of the contracts, and bad input answered
/// with a message that says what to do.
@Suite(.serialized)
struct CLITests {
    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static func run(_ arguments: [String], environment: [String: String]) throws -> Output {
        let binary = ResilienceTests.binary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestFailure("\(binary) is missing: run the tests with deploy/local/test (it builds the binary first)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    static func json(_ text: String) throws -> [String: Any] {
        let line = text.split(separator: "\n").last.map(String.init) ?? ""
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(text)")
        }
        return object
    }

    @Test func importSearchStatsAndQueuesSpeakTheirJSONContracts() async throws {
        try await TestEnvironment.with { env in
            let pipeline = try ResilienceTests.pipelineFile()
            var environment = env.childEnvironment
            environment["INTELLIDOCS_PIPELINE"] = pipeline
            let corpus = try generateTextCorpus(count: 30)
            defer { try? FileManager.default.removeItem(atPath: corpus) }

            #expect(try Self.run(["org", "create", "cli"], environment: environment).status == 0)
            let taken = try Self.run(["org", "create", "cli"], environment: environment)
            #expect(taken.status != 0)
            #expect(taken.stderr.contains("already exists"))

            let workers = try ResilienceTests.startWorkers(env, pipeline: pipeline)
            defer { kill(workers.processIdentifier, SIGTERM); workers.waitUntilExit() }
            let report = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString).csv").path
            try Data([0xFF, 0x00, 0x01]).write(to: URL(fileURLWithPath: corpus + "/broken.txt"))
            let imported = try Self.run(
                ["import", corpus, "--org", "cli", "--wait", "--json", "--timeout", "120", "--report", report], environment: environment)
            #expect(imported.status == 0, "\(imported.stderr)")
            let summary = try Self.json(imported.stdout)
            #expect(summary["documents"] as? Int == 31)
            #expect(summary["duplicates"] as? Int == 0)
            #expect(summary["succeeded"] as? Int == 30)
            #expect(summary["failed"] as? Int == 1)
            #expect(summary["seconds"] is Double)
            let csv = try String(contentsOfFile: report, encoding: .utf8)
            #expect(csv.hasPrefix("path,document_id,stage,reason\n"))
            #expect(csv.contains("broken.txt") && csv.contains(",ingest,"))

            let again = try Self.json(try Self.run(["import", corpus, "--org", "cli", "--json"], environment: environment).stdout)
            #expect(again["duplicates"] as? Int == 31)

            let search = try Self.json(try Self.run(["search", "token7x", "--org", "cli", "--json"], environment: environment).stdout)
            #expect(search["query"] as? String == "token7x")
            let results = search["results"] as? [[String: Any]] ?? []
            #expect(results.first?["external_id"] as? String == "nested/doc-7.txt")
            for key in ["document_id", "external_id", "title", "page", "score", "snippet"] {
                #expect(results.first?[key] != nil, "search result lacks \(key)")
            }

            let stats = try Self.json(try Self.run(["stats", "--org", "cli", "--json"], environment: environment).stdout)
            let documents = stats["documents"] as? [String: Any]
            #expect(documents?["total"] as? Int == 31)
            #expect(documents?["succeeded"] as? Int == 30)
            #expect(documents?["failed"] as? Int == 1)
            #expect(documents?["in_progress"] as? Int == 0)
            #expect((stats["chunks"] as? Int ?? 0) >= 30)
            #expect(stats["pages"] as? Int == 30)

            let queues = try Self.json(try Self.run(["queues", "--json"], environment: environment).stdout)
            let stages = queues["stages"] as? [[String: Any]] ?? []
            #expect(stages.map { $0["stage"] as? String } == ["ingest", "chunk", "index"])
            #expect((queues["event_queues"] as? [[String: Any]])?.map { $0["stage"] as? String } == ["workflow", "webhook"])
            for key in ["ready", "unacked", "consumers", "retrying", "dead_lettered"] {
                #expect(stages.first?[key] is Int, "queues lacks \(key)")
            }
        }
    }

    /// `intellidocs import` is held to the same plans as the HTTP API: documents and storage are charged
    /// as they register, the import stops at a monthly limit with the files it could not take listed, an
    /// over-size file is skipped with the plan's limit named, and a suspended organisation cannot add.
    @Test func importIsChargedToThePlanAndStopsAtItsLimits() async throws {
        try await TestEnvironment.with { env in
            let plans = FileManager.default.temporaryDirectory.appendingPathComponent("plans-\(UUID().uuidString).yml").path
            defer { try? FileManager.default.removeItem(atPath: plans) }
            try """
                version: 1
                default: tiny
                plans:
                  - name: tiny
                    limits: {documents_per_month: 5, storage_bytes: unlimited, max_file_bytes: 3000}
                  - name: roomy
                    limits: {documents_per_month: unlimited, max_file_bytes: 3000}
                """.write(toFile: plans, atomically: true, encoding: .utf8)
            var environment = env.childEnvironment
            environment["INTELLIDOCS_PIPELINE"] = try ResilienceTests.pipelineFile()
            environment["INTELLIDOCS_PLANS"] = plans
            let corpus = try generateTextCorpus(count: 8, extraFiles: ["big.txt": Array(repeating: UInt8(ascii: "a"), count: 5000)])
            defer { try? FileManager.default.removeItem(atPath: corpus) }

            let unknownPlan = try Self.run(["org", "create", "quota", "--plan", "gold"], environment: environment)
            #expect(unknownPlan.status != 0)
            #expect(unknownPlan.stderr.contains("plan 'gold' is not in"))
            #expect(try Self.run(["org", "create", "quota", "--plan", "tiny"], environment: environment).status == 0)

            let report = FileManager.default.temporaryDirectory.appendingPathComponent("quota-\(UUID().uuidString).csv").path
            defer { try? FileManager.default.removeItem(atPath: report) }
            let first = try Self.run(["import", corpus, "--org", "quota", "--json", "--report", report], environment: environment)
            #expect(first.status != 0, "an import cut short by the plan must not look complete")
            #expect(first.stderr.contains("documents_per_month limit reached: 5 used of 5 on plan 'tiny'"), "\(first.stderr)")
            let summary = try Self.json(first.stdout)
            #expect(summary["documents"] as? Int == 5)
            #expect(summary["skipped"] as? Int == 4)
            let csv = try String(contentsOfFile: report, encoding: .utf8)
            #expect(csv.contains("big.txt") && csv.contains("max_file_bytes"), "\(csv)")
            #expect(csv.components(separatedBy: "documents_per_month limit reached").count - 1 == 3)

            guard let orgID = try await OrganizationRepository(env.database).find(slug: "quota")?.id else {
                throw TestFailure("organisation quota is missing")
            }
            let (documents, bytes) = try await env.database.withConnection { connection in
                let usage = try await UsageRepository(logger: env.logger).snapshot(orgID: orgID, on: connection)
                let rows = try await connection.query(
                    "SELECT count(*), coalesce(sum(size_bytes), 0)::int8 FROM documents WHERE org_id = \(orgID)", logger: env.logger)
                var stored = (0, 0)
                for try await row in rows.decode((Int, Int).self) { stored = row }
                #expect(usage.documents == stored.0)
                #expect(usage.storageBytes == stored.1)
                return stored
            }
            #expect(documents == 5)
            #expect(bytes > 0)

            // The same import again: nothing new fits, nothing is doubled.
            let again = try Self.run(["import", corpus, "--org", "quota", "--json"], environment: environment)
            #expect(again.status != 0)
            #expect(try Self.json(again.stdout)["duplicates"] as? Int == 5)

            // A suspended organisation reads but does not add, even on a roomy plan.
            try await env.database.withConnection { connection in
                try await SubscriptionRepository(logger: env.logger).setPlan(orgID: orgID, plan: "roomy", on: connection)
                try await connection.query("UPDATE organizations SET status = 'suspended' WHERE id = \(orgID)", logger: env.logger)
            }
            let suspended = try Self.run(["import", corpus, "--org", "quota"], environment: environment)
            #expect(suspended.status != 0)
            #expect(suspended.stderr.contains("the organisation is suspended"), "\(suspended.stderr)")

            // Unsuspended on the roomy plan, the rest comes in; the over-size file still does not.
            try await env.database.client.query("UPDATE organizations SET status = 'active' WHERE id = \(orgID)", logger: env.logger)
            let rest = try Self.run(["import", corpus, "--org", "quota", "--json"], environment: environment)
            #expect(rest.status == 0, "\(rest.stderr)")
            let restSummary = try Self.json(rest.stdout)
            #expect(restSummary["documents"] as? Int == 8)
            #expect(restSummary["duplicates"] as? Int == 5)
            #expect(restSummary["skipped"] as? Int == 1)
        }
    }

    @Test func badInputAndDownServicesGiveActionableMessages() async throws {
        try await TestEnvironment.with { env in
            var environment = env.childEnvironment
            let unknown = try Self.run(["import", "/tmp", "--org", "no-such-org"], environment: environment)
            #expect(unknown.status != 0)
            #expect(unknown.stderr.contains("organisation 'no-such-org' does not exist"))
            #expect(unknown.stderr.contains("intellidocs org create no-such-org"))

            let missing = try Self.run(["stats", "--org", "x"], environment: environment.filter { $0.key != "INTELLIDOCS_DATABASE_URL" })
            #expect(missing.status != 0)
            #expect(missing.stderr.contains("INTELLIDOCS_DATABASE_URL is not set"))

            environment["INTELLIDOCS_DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/nothing"
            let databaseDown = try Self.run(["stats", "--org", "x"], environment: environment)
            #expect(databaseDown.status != 0)
            #expect(databaseDown.stderr.contains("PostgreSQL is not reachable"))

            environment = env.childEnvironment
            environment["INTELLIDOCS_AMQP_URL"] = "amqp://guest:guest@127.0.0.1:1/%2f"
            _ = try Self.run(["org", "create", "down"], environment: environment)
            let brokerDown = try Self.run(["import", "/tmp/nothing-here", "--org", "down"], environment: environment)
            #expect(brokerDown.status != 0)
            #expect(brokerDown.stderr.contains("RabbitMQ is not reachable"))

            let badPipeline = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).yml").path
            try "version: 1\nstages:\n  - name: ingest\n    prefetch: lots\n".write(toFile: badPipeline, atomically: true, encoding: .utf8)
            environment = env.childEnvironment
            environment["INTELLIDOCS_PIPELINE"] = badPipeline
            let malformed = try Self.run(["topology", "apply"], environment: environment)
            #expect(malformed.status != 0)
            #expect(malformed.stderr.contains("\(badPipeline):4:"))
            #expect(malformed.stderr.contains("prefetch"))
        }
    }

    /// `bench embed --per-batch` embeds call by call, as search embeds its queries, and says so in its JSON.
    @Test func benchEmbedMeasuresPassesOneBatchAtATime() throws {
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("embed-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: input) }
        let texts = (1...10).map { #"{"text": "query number \#($0) about vitamin levels in blood"}"# }
        try texts.joined(separator: "\n").write(toFile: input, atomically: true, encoding: .utf8)
        for perBatch in [true, false] {
            let arguments = ["bench", "embed", "--input", input, "--batch", "4", "--threads", "2", "--runs", "1", "--json"]
            let output = try Self.run(arguments + (perBatch ? ["--per-batch"] : []), environment: ProcessInfo.processInfo.environment)
            #expect(output.status == 0, "\(output.stderr)")
            let result = try Self.json(output.stdout)
            #expect(result["per_batch"] as? Bool == perBatch)
            #expect(result["texts"] as? Int == 10)
            #expect(result["batch"] as? Int == 4)
            #expect((result["texts_per_s"] as? Double ?? 0) > 0)
        }
    }

    /// `intellidocs api` as deployed: it starts, answers /healthz, serves its own and the libraries'
    /// metrics from one registry on /metrics, and exits 0 on SIGTERM. (It once crashed at start,
    /// bootstrapping swift-metrics a second time; the in-process API tests could not see that.)
    @Test func apiCommandServesAndStopsCleanly() async throws {
        try await TestEnvironment.with { env in
            var environment = env.childEnvironment
            environment["INTELLIDOCS_JWT_SECRET"] = String(repeating: "test-secret-", count: 4)
            let port = Int.random(in: 20_000..<40_000)
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("api-\(UUID().uuidString).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            defer { try? FileManager.default.removeItem(at: log) }
            let output = try FileHandle(forWritingTo: log)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ResilienceTests.binary)
            process.arguments = ["api", "--host", "127.0.0.1", "--port", "\(port)"]
            process.environment = environment
            process.standardOutput = output
            process.standardError = output
            try process.run()
            defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
            func logTail() -> String {
                String((try? String(contentsOf: log, encoding: .utf8))?.suffix(3000) ?? "")
            }
            func get(_ path: String) async -> (status: Int, body: String)? {
                guard let (data, response) = try? await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!) else { return nil }
                return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
            }

            var health: (status: Int, body: String)?
            for _ in 0..<120 where process.isRunning && health?.status != 200 {
                try await Task.sleep(for: .milliseconds(500))
                health = await get("/healthz")
            }
            #expect(health?.status == 200, "\(logTail())")
            let metrics = await get("/metrics")
            #expect(metrics?.status == 200)
            #expect(metrics?.body.contains("intellidocs_http_requests_total") == true, "the API's own metrics")
            #expect(metrics?.body.contains("intellidocs_blas_kernel_info") == true, "the process-wide metrics")

            kill(process.processIdentifier, SIGTERM)
            for _ in 0..<100 where process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
            #expect(!process.isRunning, "the API did not stop within 10 s of SIGTERM")
            if !process.isRunning { #expect(process.terminationStatus == 0, "\(logTail())") }
        }
    }
}
