import Foundation
import Storage
import Testing
import TestSupport

/// Horizontal scale: several `intellidocs worker STAGE` processes share a stage's queue; one is added and
/// one is killed mid-import, and nothing is lost or doubled.
@Suite(.serialized)
struct ScalingTests {
    @Test func workersOfOneStageCanComeAndGoMidImport() async throws {
        try await TestEnvironment.with { env in
            let org = try await env.organization("scale")
            let corpus = try generateTextCorpus(count: 1200, seed: 11)
            defer { try? FileManager.default.removeItem(atPath: corpus) }
            let pipeline = try ResilienceTests.pipelineFile()
            let expected = try ResilienceTests.expectedChunks(corpus)
            let imported = try await env.importFiles([corpus], into: org)

            var processes: [Process] = []
            defer { for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) } }
            for stage in ["ingest", "chunk", "chunk", "index"] {
                processes.append(try ResilienceTests.startWorkers(env, pipeline: pipeline, arguments: ["worker", stage]))
            }
            let deadline = ContinuousClock.now + .seconds(60)
            while try await ResilienceTests.succeeded(env, org) < 100, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            // Kill one chunk worker and add another, mid-import.
            kill(processes[1].processIdentifier, SIGKILL)
            processes[1].waitUntilExit()
            processes.append(try ResilienceTests.startWorkers(env, pipeline: pipeline, arguments: ["worker", "chunk", "--concurrency", "1"]))
            let midway = try await ResilienceTests.succeeded(env, org)
            print("chunk worker killed and another added with \(midway) of 1200 documents succeeded")
            #expect(midway < 1200, "the change must land mid-import to prove anything")

            let state = try await env.wait(for: imported.documentIDs, orgID: org.id, seconds: 180)
            #expect(state.succeeded == 1200)
            #expect(state.failed == 0)
            #expect(try await env.count("SELECT count(*) FROM chunks WHERE org_id = \(org.id)") == expected)
            #expect(try await env.count("SELECT count(*) FROM stage_runs WHERE org_id = \(org.id) AND status = 'succeeded'") == 3600)
            try await Task.sleep(for: .seconds(1))
            for process in processes where process.isRunning {
                kill(process.processIdentifier, SIGTERM)
                process.waitUntilExit()
                #expect(process.terminationReason == .exit && process.terminationStatus == 0)
            }
        }
    }
}
