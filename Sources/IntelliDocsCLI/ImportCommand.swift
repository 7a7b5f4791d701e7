public import ArgumentParser
import Blobs
import ControlPlane
import Foundation
import Importing
import Pipeline
import Storage
import Synchronization

extension ImportFormat: ExpressibleByArgument {}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import files, folders, .zip archives or a BEIR corpus into an organisation.",
        discussion: "Resumable: if it is interrupted, run the same command again; nothing is lost or doubled.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "Files, folders, .zip archives (or, with --format beir, corpus.jsonl or its folder).") var paths: [String]
    @Option(help: "Organisation slug.") var org: String
    @Option(help: "auto (files) or beir (corpus.jsonl).") var format: ImportFormat = .auto
    @Flag(help: "Wait until every imported document has succeeded or failed.") var wait = false
    @Option(help: "With --wait, give up after this many seconds.") var timeout: Int?
    @Flag(help: "Print one JSON summary at the end.") var json = false
    @Option(help: "Write failed and skipped files to this CSV (path, document id, stage, reason).") var report: String?

    struct Summary: Encodable {
        let documents: Int
        let duplicates: Int
        let succeeded: Int
        let failed: Int
        let skipped: Int
        let seconds: Double
    }

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one file or folder to import") }
        if timeout != nil && !wait { throw ValidationError("--timeout only makes sense with --wait") }
    }

    func run() async throws {
        let started = ContinuousClock.now
        let progress = ProgressLine()
        try await Services.with(options, label: "intellidocs.import") { services in
            let organization = try await services.organization(org)
            let blobs = try services.blobStore()
            // The same plans and quotas as the HTTP API: documents and storage are charged as they register.
            let quotas = QuotaService(plans: try PlanCatalog.load(path: services.settings.plansPath), logger: services.logger)
            let result = try await services.withBroker(name: "intellidocs import") { broker in
                try await Topology.apply(services.pipelineDefinition, broker: broker)
                var importer = Importer(
                    database: services.database, blobs: blobs, publisher: JobPublisher(broker: broker),
                    pipeline: services.pipelineDefinition, logger: services.logger)
                importer.quotas = quotas
                return try await importer.run(paths: paths, organization: organization, format: format) { p in
                    progress.update("found \(p.found)  stored \(p.stored)  duplicates \(p.duplicates)  published \(p.published)  skipped \(p.skipped)")
                }
            }
            progress.finish()
            if result.resumed && !json { print("resumed an interrupted import") }

            var final = WaitProgress(total: Set(result.documentIDs).count)
            if wait {
                let stages = services.pipelineDefinition.stages.map(\.name)
                final = try await ImportWaiter(database: services.database).wait(
                    for: result.documentIDs, orgID: organization.id, timeout: timeout.map { .seconds($0) }
                ) { state in
                    let perStage = stages.map { "\($0) \(state.stages[$0] ?? 0)" }.joined(separator: "  ")
                    progress.update("\(state.succeeded + state.failed)/\(state.total) done  (\(perStage))  failed \(state.failed)")
                }
                progress.finish()
            }
            if let report {
                let failures = wait ? try await DocumentRepository(services.database).failures(result.documentIDs, orgID: organization.id) : []
                try writeReport(report, skipped: result.skipped, failures: failures, paths: result.sourcePaths)
            }
            let seconds = (ContinuousClock.now - started) / .seconds(1)
            let summary = Summary(
                documents: result.documentIDs.count, duplicates: result.progress.duplicates, succeeded: final.succeeded,
                failed: final.failed, skipped: result.skipped.count, seconds: (seconds * 1000).rounded() / 1000)
            if json {
                try printJSON(summary)
            } else {
                var line = "imported \(summary.documents) document(s) into \(org): \(result.progress.stored) new, \(summary.duplicates) duplicate(s), \(summary.skipped) skipped"
                if wait { line += "; \(summary.succeeded) succeeded, \(summary.failed) failed" }
                line += " in \(String(format: "%.1f", seconds)) s"
                print(line)
                if !wait { print("follow progress with `intellidocs stats --org \(org)`; workers run with `intellidocs run`") }
                for skip in result.skipped.prefix(20) { print("skipped \(skip.path): \(skip.reason)") }
                if result.skipped.count > 20 { print("… and \(result.skipped.count - 20) more (use --report FILE.csv)") }
            }
            if let refusal = result.quotaRefusal {
                // Exit non-zero: the import is incomplete. Running it again after an upgrade (or in the next
                // period) resumes it; the files already imported count as duplicates.
                throw CLIError("the import stopped at the organisation's plan: \(refusal); the files from there on were not imported (listed with --report FILE.csv); run the same import again once the plan allows more")
            }
        }
    }

    private func writeReport(_ path: String, skipped: [SkippedFile], failures: [DocumentRecord], paths: [UUID: String]) throws {
        func field(_ text: String) -> String {
            text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        var csv = "path,document_id,stage,reason\n"
        for skip in skipped { csv += [field(skip.path), "", "import", field(skip.reason)].joined(separator: ",") + "\n" }
        for failure in failures {
            csv += [
                field(paths[failure.id] ?? failure.sourcePath ?? ""), failure.id.uuidString.lowercased(), field(failure.failedStage ?? ""),
                field(failure.error ?? ""),
            ].joined(separator: ",") + "\n"
        }
        do {
            try csv.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw CLIError("cannot write the report to \(path): \(error.localizedDescription)")
        }
    }
}

/// A progress line: redrawn in place on a terminal, a plain line every few seconds otherwise (logs, CI).
final class ProgressLine: Sendable {
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private struct State {
        var last = ContinuousClock.now - .seconds(10)
        var text = ""
    }
    private let state = Mutex(State())

    func update(_ text: String) {
        let now = ContinuousClock.now
        state.withLock { (state: inout State) in
            state.text = text
            let interval: Duration = isTerminal ? .milliseconds(100) : .seconds(5)
            guard now - state.last >= interval else { return }
            state.last = now
            if isTerminal {
                FileHandle.standardError.write(Data(("\r\u{1B}[2K" + text).utf8))
            } else {
                FileHandle.standardError.write(Data((text + "\n").utf8))
            }
        }
    }

    /// Prints the latest state and ends the line.
    func finish() {
        state.withLock { (state: inout State) in
            guard !state.text.isEmpty else { return }
            FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[2K" : "") + state.text + "\n").utf8))
            state.text = ""
            state.last = ContinuousClock.now - .seconds(10)
        }
    }
}
