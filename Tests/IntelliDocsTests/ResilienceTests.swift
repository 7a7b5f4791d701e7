import Chunking
import Extraction
import Foundation
import Importing
import Pipeline
import PostgresNIO
import Storage
import Testing
import TestSupport

/// Crashes and restarts against real processes: the `intellidocs` binary (built by the test command) and
/// the local stack's RabbitMQ.
@Suite(.serialized)
struct ResilienceTests {
    static let binary = repositoryRoot + "/.build/debug/intellidocs"

    /// Writes the test pipeline for child processes.
    static func pipelineFile() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString).yml").path
        try """
            version: 1
            name: test
            defaults:
              max_attempts: 3
              retry_delays: [1s, 2s]
              delivery_limit: 5
              prefetch: 100
              batch_size: 50
              concurrency: 2
            stages:
              - name: ingest
              - name: chunk
                options: {max_tokens: 200, overlap: 30}
              - name: index
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func startWorkers(_ env: TestEnvironment, pipeline: String, arguments: [String] = ["run"]) throws -> Process {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestFailure("\(binary) is missing: run the tests with deploy/local/test (it builds the binary first)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments + ["--pipeline", pipeline, "--metrics-port", "0"]
        process.environment = env.childEnvironment
        process.standardOutput = FileHandle.nullDevice
        // The workers' log, for the failure message of a test that waits for them in vain.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("workers-\(env.name).log").path
        if !FileManager.default.fileExists(atPath: log) { FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        process.standardError = handle
        try process.run()
        return process
    }

    /// Runs `deploy/local/stack COMMAND`. The workers keep both cores busy meanwhile, so the stack's readiness
    /// waits get three minutes instead of one. If the command fails, the broker is brought back up for the
    /// tests that follow, and the failure carries the end of the script's output.
    static func stack(_ command: String) throws {
        func run(_ command: String, log: String) throws -> Int32 {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: repositoryRoot + "/deploy/local/stack")
            process.arguments = [command]
            process.environment = ProcessInfo.processInfo.environment.merging(["INTELLIDOCS_STACK_TIMEOUT": "180"]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("stack-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let status = try run(command, log: log)
        guard status != 0 else { return }
        let output = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(60).joined(separator: "\n") ?? ""
        let recovery = try run("up", log: log + ".up")
        try? FileManager.default.removeItem(atPath: log + ".up")
        throw TestFailure(
            "deploy/local/stack \(command) exited with \(status) (a following 'stack up' exited with \(recovery)); its output:\n\(output)")
    }

    /// The number of chunks an undisturbed run makes for the files in `folder`.
    static func expectedChunks(_ folder: String) throws -> Int {
        let chunker = Chunker(options: ChunkingOptions(maxSize: 200, overlap: 30), measure: ApproximateTokenMeasure())
        var total = 0
        let files = FileManager.default.enumerator(atPath: folder)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".txt") }
        for file in files {
            let bytes = [UInt8](FileManager.default.contents(atPath: folder + "/" + file)!)
            let pages = try TextExtractor.extract(bytes, kind: .plainText)
            total += chunker.chunks(pages: pages.map { (number: $0.number, text: $0.text) }).count
        }
        return total
    }

    static func succeeded(_ env: TestEnvironment, _ org: Organization) async throws -> Int {
        try await env.count("SELECT count(*) FROM documents WHERE org_id = \(org.id) AND status = 'succeeded'")
    }

    @Test func workerKilledMidImportLosesAndDoublesNothing() async throws {
        try await TestEnvironment.with { env in
            let org = try await env.organization("crash")
            let corpus = try generateTextCorpus(count: 1000, seed: 7)
            defer { try? FileManager.default.removeItem(atPath: corpus) }
            let pipeline = try Self.pipelineFile()
            let expected = try Self.expectedChunks(corpus)

            // Queue the whole import first, then start the workers and kill them while documents are in flight.
            let imported = try await env.importFiles([corpus], into: org)
            #expect(imported.documentIDs.count == 1000)
            var workers = try Self.startWorkers(env, pipeline: pipeline)
            let deadline = ContinuousClock.now + .seconds(60)
            while try await Self.succeeded(env, org) < 40, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            kill(workers.processIdentifier, SIGKILL)
            workers.waitUntilExit()
            let before = try await Self.succeeded(env, org)
            print("worker killed with \(before) of 1000 documents succeeded")
            #expect(before > 0 && before < 1000, "the kill must land mid-import to prove anything (succeeded: \(before))")

            workers = try Self.startWorkers(env, pipeline: pipeline)
            let state: WaitProgress
            do {
                state = try await env.wait(for: imported.documentIDs, orgID: org.id, seconds: 180)
            } catch {
                let log = FileManager.default.temporaryDirectory.appendingPathComponent("workers-\(env.name).log").path
                let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(40).joined(separator: "\n") ?? ""
                let stuck = try await env.count(
                    "SELECT count(*) FROM documents WHERE org_id = \(org.id) AND status NOT IN ('succeeded', 'failed')")
                kill(workers.processIdentifier, SIGKILL)
                throw TestFailure("\(error); \(stuck) documents stuck; last worker log lines:\n\(tail)")
            }
            // Let the process finish starting up before asking it to stop.
            try await Task.sleep(for: .seconds(2))
            kill(workers.processIdentifier, SIGTERM)
            workers.waitUntilExit()
            #expect(workers.terminationReason == .exit && workers.terminationStatus == 0, "SIGTERM should drain and exit cleanly")

            #expect(state.succeeded == 1000)
            #expect(state.failed == 0)
            #expect(try await env.count("SELECT count(*) FROM chunks WHERE org_id = \(org.id)") == expected)
            #expect(try await env.count("SELECT count(*) FROM pages WHERE org_id = \(org.id)") == 1000)
            #expect(try await env.count("SELECT count(*) FROM stage_runs WHERE org_id = \(org.id) AND status = 'succeeded'") == 3000)
        }
    }

    @Test func brokerRestartMidImportLosesNothing() async throws {
        try await TestEnvironment.with { env in
            let org = try await env.organization("restart")
            let corpus = try generateTextCorpus(count: 600, seed: 9)
            defer { try? FileManager.default.removeItem(atPath: corpus) }
            let pipeline = try Self.pipelineFile()
            let workers = try Self.startWorkers(env, pipeline: pipeline)
            defer { if workers.isRunning { kill(workers.processIdentifier, SIGKILL) } }

            // Import while the broker restarts; an import the broker cut off is simply run again.
            async let restart: Void = {
                try await Task.sleep(for: .milliseconds(300))
                try Self.stack("rabbit-restart")
            }()
            // Retried for as long as the restart may take on a loaded machine (the stack allows it 180 s per wait).
            var documentIDs: [UUID] = []
            let deadline = ContinuousClock.now + .seconds(300)
            while true {
                do {
                    documentIDs = try await env.importFiles([corpus], into: org).documentIDs
                    break
                } catch {
                    if ContinuousClock.now > deadline { throw error }
                    try await Task.sleep(for: .seconds(1))
                }
            }
            try await restart
            #expect(Set(documentIDs).count == 600)
            let state = try await env.wait(for: documentIDs, orgID: org.id, seconds: 240)
            #expect(state.succeeded == 600)
            #expect(state.failed == 0)
            #expect(try await env.count("SELECT count(*) FROM documents WHERE org_id = \(org.id)") == 600)
            #expect(try await env.count("SELECT count(*) FROM chunks WHERE org_id = \(org.id)") == (try Self.expectedChunks(corpus)))
            kill(workers.processIdentifier, SIGTERM)
            workers.waitUntilExit()
        }
    }
}
