import ArgumentParser
import Extraction
import Foundation
import OCR
import Stages
import Storage

/// The OCR settings both commands take, with the pipeline's defaults.
struct OCRCommandOptions: ParsableArguments {
    @Option(help: "Tesseract languages, e.g. eng or eng+deu.") var languages = "eng"
    @Option(help: "OCR threads (default: the number of cores).") var threads: Int?
    @Option(name: .customLong("page-timeout"), help: "Time limit per page, e.g. 60s or 500ms.") var pageTimeout = "60s"
    @Option(name: .customLong("max-pages"), help: "Most pages a PDF or TIFF may have.") var maxPages: Int?
    @Option(name: .customLong("max-pixels"), help: "Most pixels per page image.") var maxPixels: Int?

    /// The same parsing and checks as the pipeline's `ocr` options.
    func stageOptions() throws -> OCRStage.Options {
        var options: [String: String] = ["languages": languages, "page_timeout": pageTimeout]
        options["threads"] = threads.map(String.init)
        options["max_pages"] = maxPages.map(String.init)
        options["max_pixels"] = maxPixels.map(String.init)
        do {
            return try OCRStage.Options(options)
        } catch {
            throw ValidationError(error.message)
        }
    }

    func pool(_ options: OCRStage.Options, preprocess: Bool = true) throws -> OCRPool {
        var configuration = options.poolConfiguration
        configuration.detectOrientation = preprocess
        configuration.deskew = preprocess
        do {
            return try OCRPool(configuration)
        } catch {
            throw ValidationError(error.message)
        }
    }
}

/// `intellidocs ocr FILE…`: what the pipeline would read from local files, without queues or a database.
struct OCRCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ocr",
        abstract: "Read local files as ingest and ocr would: text layers, DOCX, OCR of scanned pages and images.",
        discussion: """
            Prints each file's pages with their source (text, text-layer, ocr) and OCR confidence (0–100). With \
            --json, one object per file and line: {"file", "pages": [{"page", "source", "confidence", "text"}]} \
            or {"file", "error"}. Exits with 1 if any file failed.
            """)

    @Argument(help: "Files to read (PDF, PNG, JPEG, TIFF, GIF, WebP, DOCX, text, Markdown, HTML).") var files: [String]
    @Flag(help: "Print one JSON object per file and line.") var json = false
    @OptionGroup var ocr: OCRCommandOptions

    struct FileOutput: Sendable {
        struct Page: Sendable {
            let page: Int
            let source: String
            let confidence: Double?
            let text: String
        }
        let file: String
        var pages: [Page]?
        var error: String?

        /// One JSON line with the keys in the documented order (`file` first, then `pages` or `error`),
        /// which the synthesised encoding does not promise.
        func jsonLine() throws -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            func json(_ value: some Encodable) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
            var line = "{\"file\":\(try json(file))"
            if let pages {
                let items = try pages.map { page in
                    "{\"page\":\(page.page),\"source\":\(try json(page.source)),\"confidence\":\(try json(page.confidence)),\"text\":\(try json(page.text))}"
                }
                line += ",\"pages\":[\(items.joined(separator: ","))]"
            }
            if let error { line += ",\"error\":\(try json(error))" }
            return line + "}"
        }
    }

    func run() async throws {
        let options = try ocr.stageOptions()
        let pool = try ocr.pool(options)
        let reader = DocumentReader(limits: options.limits)
        let outputs = try await withThrowingTaskGroup(of: (Int, FileOutput).self) { group in
            // A few files at a time: each queues all its pages, so the pool stays busy without holding
            // every file in memory.
            let window = max(2, options.threads * 2)
            var results = [FileOutput?](repeating: nil, count: files.count)
            var printed = 0
            for (index, file) in files.enumerated() {
                if index >= window, let (done, output) = try await group.next() {
                    results[done] = output
                    printed = try emit(&results, from: printed)
                }
                group.addTask {
                    // Await before building the tuple (see `ScannedPages.recognize`: a Swift 6.3.1 release-build bug).
                    let output = await Self.read(file, reader: reader, pool: pool, limits: options.limits)
                    return (index, output)
                }
            }
            for try await (done, output) in group {
                results[done] = output
                printed = try emit(&results, from: printed)
            }
            return results.compactMap { $0 }
        }
        await pool.shutdown()
        if outputs.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }

    /// Prints the finished outputs that are next in input order; returns how many are printed in all.
    private func emit(_ results: inout [FileOutput?], from printed: Int) throws -> Int {
        var next = printed
        while next < results.count, let output = results[next] {
            try print(output)
            next += 1
        }
        return next
    }

    private func print(_ output: FileOutput) throws {
        if json {
            Swift.print(try output.jsonLine())
            return
        }
        if let error = output.error {
            Swift.print("==> \(output.file): error: \(error)")
            return
        }
        let pages = output.pages ?? []
        Swift.print("==> \(output.file) (\(pages.count) page\(pages.count == 1 ? "" : "s"))")
        for page in pages {
            let confidence = page.confidence.map { String(format: ", confidence %.0f", $0) } ?? ""
            Swift.print("--- page \(page.page) (\(page.source)\(confidence))")
            if !page.text.isEmpty { Swift.print(page.text) }
        }
    }

    /// The same steps as ingest then ocr, for one local file.
    static func read(_ path: String, reader: DocumentReader, pool: OCRPool, limits: DocumentLimits) async -> FileOutput {
        var output = FileOutput(file: path)
        guard let data = FileManager.default.contents(atPath: path) else {
            output.error = "cannot read the file (missing, a folder, or no permission)"
            return output
        }
        let bytes = [UInt8](data)
        if bytes.isEmpty {
            output.error = "the file is empty (0 bytes)"
            return output
        }
        let sniffed = TypeSniffer.sniff(bytes, fileName: path)
        let document: DocumentReader.Document
        switch await reader.read(bytes, as: sniffed) {
        case .success(let read): document = read
        case .failure(let failure):
            output.error = failure.reason
            return output
        }
        let scanned = document.pages.filter { $0.content == .needsOCR }.map(\.number)
        var recognized: [Int: OCRResult] = [:]
        if !scanned.isEmpty {
            switch await ScannedPages(bytes: bytes, kind: document.kind, limits: limits).recognize(scanned, pool: pool) {
            case .success(let pages): for page in pages { recognized[page.number] = page.result }
            case .failure(let failure):
                output.error = failure.reason
                return output
            }
        }
        output.pages = document.pages.map { page in
            switch page.content {
            case .text(let text, let source):
                return .init(page: page.number, source: source.rawValue, confidence: nil, text: text)
            case .needsOCR:
                let result = recognized[page.number]
                return .init(
                    page: page.number, source: PageSource.ocr.rawValue, confidence: result?.confidence, text: result?.text ?? "")
            }
        }
        return output
    }
}

/// `intellidocs bench ocr DIR`: OCR throughput and accuracy on a folder of page images, optionally against
/// the `tesseract` command-line tool on the same pages.
struct OCRBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ocr",
        abstract: "OCR every image in a folder with all cores; print pages/second and the character error rate.",
        discussion: """
            Truth: NAME.txt or NAME.gt.txt beside an image (or in --truth), where NAME is the image's name without \
            its extension, or without all of them (010001.bin.png → 010001.gt.txt). CER = Levenshtein distance / \
            truth length over whitespace-normalised text, summed over the pages that have truth. \
            --compare-cli also runs `tesseract IMAGE OUT -l LANGUAGES` on the same images, one at a time with \
            default settings, then tuned as OCRmyPDF runs it (OMP_THREAD_LIMIT=1, one process per core).
            """)

    @Argument(help: "Folder of page images (PNG, JPEG, TIFF, GIF, WebP); searched recursively.") var directory: String
    @Flag(help: "Print the result as JSON (always the case; kept for symmetry with other commands).") var json = false
    @Option(help: "Another folder to look for NAME.txt / NAME.gt.txt truth files in.") var truth: String?
    @Flag(name: .customLong("no-preprocess"), help: "Skip deskew and orientation detection.") var noPreprocess = false
    @Flag(name: .customLong("compare-cli"), help: "Also time the tesseract command-line tool on the same images.") var compareCLI = false
    @OptionGroup var ocr: OCRCommandOptions

    struct Figures: Encodable {
        let pages: Int
        let seconds: Double
        let pagesPerSecond: Double
        let cer: Double?
        enum CodingKeys: String, CodingKey { case pages, seconds, pagesPerSecond = "pages_per_s", cer }

        init(pages: Int, seconds: Double, cer: Double?) {
            self.pages = pages
            self.seconds = (seconds * 100).rounded() / 100
            self.pagesPerSecond = (Double(pages) / max(seconds, 0.001) * 1000).rounded() / 1000
            self.cer = cer.map { ($0 * 10000).rounded() / 10000 }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(pages, forKey: .pages)
            try container.encode(seconds, forKey: .seconds)
            try container.encode(pagesPerSecond, forKey: .pagesPerSecond)
            try container.encode(cer, forKey: .cer)  // null, not missing, without truth
        }
    }

    struct Result: Encodable {
        let pages: Int
        let seconds: Double
        let pagesPerSecond: Double
        let cer: Double?
        let threads: Int
        let languages: String
        let truthPages: Int
        var cli: [String: Figures]?
        var speedup: [String: Double]?

        init(figures: Figures, threads: Int, languages: String, truthPages: Int) {
            (pages, seconds, pagesPerSecond, cer) = (figures.pages, figures.seconds, figures.pagesPerSecond, figures.cer)
            (self.threads, self.languages, self.truthPages) = (threads, languages, truthPages)
        }

        enum CodingKeys: String, CodingKey {
            case pages, seconds, pagesPerSecond = "pages_per_s", cer, threads, languages, truthPages = "truth_pages", cli, speedup
        }

        /// `cer` is written as null when no page has truth (the synthesised encoding would leave it out).
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(pages, forKey: .pages)
            try container.encode(seconds, forKey: .seconds)
            try container.encode(pagesPerSecond, forKey: .pagesPerSecond)
            try container.encode(cer, forKey: .cer)
            try container.encode(threads, forKey: .threads)
            try container.encode(languages, forKey: .languages)
            try container.encode(truthPages, forKey: .truthPages)
            try container.encodeIfPresent(cli, forKey: .cli)
            try container.encodeIfPresent(speedup, forKey: .speedup)
        }
    }

    /// One image of the folder: its pages and its truth, if any.
    struct Image: Sendable {
        let path: String
        let pages: Int
        let truth: String?
    }

    func run() async throws {
        let options = try ocr.stageOptions()
        let images = try findImages(limits: options.limits)
        guard !images.isEmpty else { throw ValidationError("no PNG, JPEG, TIFF, GIF or WebP images in \(directory)") }
        let pool = try ocr.pool(options, preprocess: !noPreprocess)

        let started = ContinuousClock.now
        let texts = try await withThrowingTaskGroup(of: (Int, Int, String).self) { group in
            for (index, image) in images.enumerated() {
                for page in 0..<image.pages {
                    let path = image.path
                    group.addTask {
                        let result = try await pool.recognize { .encoded([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), page: page) }
                        return (index, page, result.text)
                    }
                }
            }
            var texts = images.map { [String](repeating: "", count: $0.pages) }
            for try await (index, page, text) in group { texts[index][page] = text }
            return texts
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        await pool.shutdown()

        let pageCount = images.reduce(0) { $0 + $1.pages }
        var result = Result(
            figures: Figures(pages: pageCount, seconds: seconds, cer: Self.cer(images, texts: texts.map { $0.joined(separator: "\n") })),
            threads: options.threads, languages: options.languages.joined(separator: "+"),
            truthPages: images.filter { $0.truth != nil }.reduce(0) { $0 + $1.pages })
        if compareCLI {
            let languages = options.languages.joined(separator: "+")
            let serial = try await Self.runCLI(images, languages: languages, processes: 1, tuned: false)
            let tuned = try await Self.runCLI(images, languages: languages, processes: options.threads, tuned: true)
            result.cli = ["default": serial, "tuned": tuned]
            result.speedup = [
                "vs_default": (result.pagesPerSecond / max(serial.pagesPerSecond, 0.0001) * 100).rounded() / 100,
                "vs_tuned": (result.pagesPerSecond / max(tuned.pagesPerSecond, 0.0001) * 100).rounded() / 100,
            ]
        }
        try printJSON(result)
    }

    /// The corpus CER over the images that have truth, nil when none has.
    static func cer(_ images: [Image], texts: [String]) -> Double? {
        var accumulator = CharacterErrorRate.Accumulator()
        for (image, text) in zip(images, texts) {
            if let truth = image.truth { accumulator.add(recognized: text, truth: truth) }
        }
        return accumulator.rate
    }

    private func findImages(limits: DocumentLimits) throws -> [Image] {
        let root = URL(fileURLWithPath: directory)
        guard let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else {
            throw ValidationError("cannot read the folder \(directory)")
        }
        var images: [Image] = []
        for case let url as URL in enumerator {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true,
                let handle = try? FileHandle(forReadingFrom: url)
            else { continue }
            let head = (try? handle.read(upToCount: TypeSniffer.windowSize)) ?? Data()
            try? handle.close()
            let kind = TypeSniffer.sniff([UInt8](head), fileName: url.lastPathComponent).kind
            guard kind.isImage, let data = try? Data(contentsOf: url) else { continue }
            let header: ImageHeader
            do {
                header = try ImageHeader.read([UInt8](data), kind: kind, limits: limits)
            } catch {
                FileHandle.standardError.write(Data("skipping \(url.path): \(error.message)\n".utf8))
                continue
            }
            images.append(Image(path: url.path, pages: header.pages.count, truth: truthText(for: url)))
        }
        return images.sorted { $0.path < $1.path }
    }

    /// NAME.txt or NAME.gt.txt beside the image or in `--truth`, NAME dropping one extension at a time.
    private func truthText(for image: URL) -> String? {
        var stem = image.deletingPathExtension().lastPathComponent
        let folders = [image.deletingLastPathComponent().path] + (truth.map { [$0] } ?? [])
        while true {
            for folder in folders {
                for candidate in ["\(stem).txt", "\(stem).gt.txt"] {
                    let path = (folder as NSString).appendingPathComponent(candidate)
                    if path != image.path, let text = try? String(contentsOfFile: path, encoding: .utf8) { return text }
                }
            }
            guard let dot = stem.lastIndex(of: "."), dot != stem.startIndex else { return nil }
            stem = String(stem[..<dot])
        }
    }

    /// Runs `tesseract IMAGE OUT -l LANGUAGES` on every image, `processes` at a time: with the environment
    /// as is but without OMP_THREAD_LIMIT (the tool's default), or with OMP_THREAD_LIMIT=1 (`tuned`).
    static func runCLI(_ images: [Image], languages: String, processes: Int, tuned: Bool) async throws -> Figures {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("intellidocs-ocr-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var variables = ProcessInfo.processInfo.environment
        variables["OMP_THREAD_LIMIT"] = tuned ? "1" : nil
        let environment = variables
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, image) in images.enumerated() {
                if index >= processes { try await group.next() }
                let output = folder.appendingPathComponent("\(index)").path
                group.addTask { try await runProcess("tesseract", [image.path, output, "-l", languages], environment: environment) }
            }
            try await group.waitForAll()
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        let texts = images.indices.map { (try? String(contentsOfFile: folder.appendingPathComponent("\($0).txt").path, encoding: .utf8)) ?? "" }
        return Figures(pages: images.reduce(0) { $0 + $1.pages }, seconds: seconds, cer: cer(images, texts: texts))
    }

    private static func runProcess(_ tool: String, _ arguments: [String], environment: [String: String]) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: ValidationError("cannot run \(tool): \(error); install tesseract-ocr"))
            }
        }
        if status != 0 { throw ValidationError("\(tool) \(arguments.joined(separator: " ")) exited with \(status)") }
    }
}
