import Foundation
@testable import OCR
import Testing

/// One pool for the suite: engines load once, as in a worker.
let sharedPool = try! OCRPool(OCRPool.Configuration())
/// The same engine settings without deskew and orientation: what plain Tesseract does.
let plainPool = try! OCRPool(OCRPool.Configuration(detectOrientation: false, deskew: false))

/// A real scan changed by Leptonica (turned, skewed) or by hand (noise), as gray pixels for the pool.
func transformedPage(_ bytes: [UInt8], _ transform: (PageImage) throws -> PageImage) throws -> OCRImage {
    let decoded = try PageImage.decode(bytes)
    let changed = try transform(try decoded.grayscale())
    let (width, height, pixels) = try changed.grayPixels()
    return .gray(width: width, height: height, pixels: pixels, dpi: decoded.resolution)
}

@Suite(.serialized) struct OCRPoolTests {
    @Test(arguments: [("filing_01", 0.01), ("receipt_03", 0.01), ("table_08", 0.03)])
    func realPagesMatchTheirTruth(name: String, bound: Double) async throws {
        let (image, truth) = try TestData.scribePage(name)
        let result = try await sharedPool.recognize { .encoded(image, page: 0) }
        let cer = CharacterErrorRate.rate(recognized: result.text, truth: truth)
        #expect(cer <= bound, "CER \(cer) on \(name)")
        #expect(result.confidence > 80)
        #expect(result.quarterTurns == 0)
    }

    @Test func scannedTextLinesMatchTheirTranscriptions() async throws {
        let folder = "ocr-pages/uw3-lines/train"
        let ids = ["010001", "010002", "010003", "010005", "010006", "010007", "010008", "010009", "010010", "010011"]
        var accumulator = CharacterErrorRate.Accumulator()
        for id in ids {
            let image = try TestData.bytes("\(folder)/\(id).bin.png")
            let result = try await sharedPool.recognize { .encoded(image, page: 0) }
            accumulator.add(recognized: result.text, truth: try TestData.text("\(folder)/\(id).gt.txt"))
        }
        #expect(try #require(accumulator.rate) <= 0.05, "CER \(accumulator.rate ?? 1) over \(ids.count) lines")
    }

    /// A page turned by 90°, 180° or 270° reads like the upright page. Upside down and turned
    /// counter-clockwise, plain Tesseract reads garbage and OSD turns the page back; turned clockwise,
    /// Tesseract's layout analysis often finds the vertical lines itself (then no turn is needed).
    @Test(arguments: [1, 2, 3])
    func turnedPageIsReadUpright(quarterTurns: Int) async throws {
        let (image, truth) = try TestData.scribePage("filing_01")
        let upright = try await sharedPool.recognize { .encoded(image, page: 0) }
        let turned = try transformedPage(image) { try $0.rotated(quarterTurns: quarterTurns) }
        let result = try await sharedPool.recognize { turned }
        let uprightCER = CharacterErrorRate.rate(recognized: upright.text, truth: truth)
        let cer = CharacterErrorRate.rate(recognized: result.text, truth: truth)
        #expect(cer <= uprightCER + 0.01, "CER \(cer) turned vs \(uprightCER) upright")
        let plain = try await plainPool.recognize { turned }
        let plainCER = CharacterErrorRate.rate(recognized: plain.text, truth: truth)
        // Turned back, or (only if plain Tesseract could read it as it is) left as it is.
        #expect(result.quarterTurns == (4 - quarterTurns) % 4 || (plainCER <= 0.5 && result.quarterTurns == 0))
        #expect(quarterTurns == 1 || plainCER > 0.5, "plain Tesseract read the page turned \(quarterTurns * 90)°")
    }

    /// A page skewed by 3° is straightened, and reads better than plain Tesseract reads it.
    @Test(arguments: [3.0, -3.0])
    func skewedPageIsStraightened(degrees: Double) async throws {
        let (image, truth) = try TestData.scribePage("receipt_03")
        let skewed = try transformedPage(image) { try $0.rotated(degrees: degrees) }
        let result = try await sharedPool.recognize { skewed }
        #expect(abs(result.deskewDegrees + degrees) < 0.3, "deskewed by \(result.deskewDegrees)°")
        let cer = CharacterErrorRate.rate(recognized: result.text, truth: truth)
        let plain = try await plainPool.recognize { skewed }
        let plainCER = CharacterErrorRate.rate(recognized: plain.text, truth: truth)
        #expect(cer <= 0.01, "CER \(cer)")
        #expect(cer <= plainCER, "CER \(cer) straightened vs \(plainCER) plain")
    }

    @Test func noisyPageStillReads() async throws {
        let (image, truth) = try TestData.scribePage("filing_01")
        let decoded = try PageImage.decode(image)
        var (width, height, pixels) = try decoded.grayPixels()
        // 1 % salt and 1 % pepper, from a fixed seed.
        var state: UInt64 = 7
        for index in pixels.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let roll = state >> 57
            if roll < 1 { pixels[index] = 0 } else if roll < 2 { pixels[index] = 255 }
        }
        let noisy = OCRImage.gray(width: width, height: height, pixels: pixels, dpi: decoded.resolution)
        let result = try await sharedPool.recognize { noisy }
        let cer = CharacterErrorRate.rate(recognized: result.text, truth: truth)
        #expect(cer <= 0.06, "CER \(cer) with noise")
    }

    @Test func pageOverTheTimeLimitFails() async throws {
        let pool = try OCRPool(OCRPool.Configuration(threads: 1, pageTimeout: .milliseconds(20)))
        let (image, _) = try TestData.scribePage("filing_01")
        let started = ContinuousClock.now
        await #expect(throws: OCRError.self) { _ = try await pool.recognize { .encoded(image, page: 0) } }
        do {
            _ = try await pool.recognize { .encoded(image, page: 0) }
        } catch let error as OCRError {
            #expect(error.code == .timeout && error.isPermanent)
            #expect(error.message.contains("per-page limit"))
        }
        // Stopped at the deadline rather than finishing the page (~0.5 s each).
        #expect(ContinuousClock.now - started < .seconds(3))
        await pool.shutdown()
    }

    @Test func unreadableImagesFailWithTheirReason() async throws {
        await #expect { _ = try await sharedPool.recognize { .encoded(Array("not an image at all".utf8), page: 0) } } throws: { error in
            (error as? OCRError)?.code == .unreadableImage
        }
        let (image, _) = try TestData.scribePage("receipt_03")
        let truncated = Array(image.prefix(image.count / 3))
        await #expect { _ = try await sharedPool.recognize { .encoded(truncated, page: 0) } } throws: { error in
            (error as? OCRError)?.code == .unreadableImage
        }
    }

    @Test func errorsOfTheImageSourcePassThrough() async throws {
        struct SourceFailed: Error {}
        await #expect(throws: SourceFailed.self) { _ = try await sharedPool.recognize { throw SourceFailed() } }
    }

    /// Engines are loaded once per thread and reused: six pages on two threads load at most two.
    @Test func enginesAreLoadedOncePerThread() async throws {
        let pool = try OCRPool(OCRPool.Configuration(threads: 2, detectOrientation: false))
        let (image, truth) = try TestData.scribePage("receipt_03")
        let texts = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<6 { group.addTask { try await pool.recognize { .encoded(image, page: 0) }.text } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(texts.count == 6)
        #expect(texts.allSatisfy { CharacterErrorRate.rate(recognized: $0, truth: truth) <= 0.01 })
        #expect((1...2).contains(pool.statistics.recognizersLoaded.load(ordering: .relaxed)))
        await pool.shutdown()
        await #expect { _ = try await pool.recognize { .encoded(image, page: 0) } } throws: { error in
            (error as? OCRError)?.code == .shutDown
        }
    }

    @Test func cancellingStopsAPageQuickly() async throws {
        let pool = try OCRPool(OCRPool.Configuration(threads: 1, detectOrientation: false))
        let (image, _) = try TestData.scribePage("multicol_03")
        let task = Task { try await pool.recognize { .encoded(image, page: 0) } }
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        #expect(ContinuousClock.now - started < .seconds(2))
        await pool.shutdown()
    }

    @Test func missingLanguageIsReportedAtStart() {
        #expect { _ = try OCRPool(OCRPool.Configuration(languages: ["eng", "xyz"])) } throws: { error in
            guard let error = error as? OCRError else { return false }
            return error.code == .languageUnavailable && error.message.contains("tesseract-ocr-xyz")
        }
    }

    @Test func openMPIsLimitedWithoutTheEnvironmentVariable() {
        // Debian's Tesseract links libgomp; the pool turns its parallel regions single-threaded.
        #expect(OpenMP.runParallelRegionsSingleThreaded())
    }
}
