import Foundation
import Testing
import ZIPFoundation

/// The shared test data (`<repo>/../shared/data`, see its READMEs).
enum TestData {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.deletingLastPathComponent().appendingPathComponent("shared/data").path
    }()

    static func bytes(_ relativePath: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: "\(root)/\(relativePath)") else {
            throw TestDataMissing(path: "\(root)/\(relativePath)")
        }
        return [UInt8](data)
    }

    static func text(_ relativePath: String) throws -> String {
        String(decoding: try bytes(relativePath), as: UTF8.self)
    }

    /// A scribe-ocr-benchmark page and its truth.
    static func scribePage(_ name: String) throws -> (image: [UInt8], truth: String) {
        (try bytes("ocr-pages/scribe-ocr-benchmark/img/\(name).png"), try text("ocr-pages/scribe-ocr-benchmark/truth_txt/\(name).txt"))
    }

    /// A PDF made by `pdfunite` (poppler-utils) from pages of the shared PDFs: real text and scanned pages.
    static func unitedPDF(_ parts: [String]) throws -> [UInt8] {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("united-\(UUID().uuidString).pdf").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["pdfunite"] + parts.map { "\(root)/\($0)" } + [output]
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let data = FileManager.default.contents(atPath: output) else {
            throw TestDataMissing(path: "pdfunite output (install poppler-utils)")
        }
        return [UInt8](data)
    }
}

struct TestDataMissing: Error, CustomStringConvertible {
    let path: String
    var description: String { "test data missing: \(path)" }
}

/// Hand-made PDFs for the failure cases poppler must report: a correct cross-reference table around
/// whatever objects a test needs.
enum MiniPDF {
    static func make(objects: [String], trailer: String = "") -> [UInt8] {
        var body = "%PDF-1.4\n"
        var offsets: [Int] = []
        for (index, object) in objects.enumerated() {
            offsets.append(body.utf8.count)
            body += "\(index + 1) 0 obj\n\(object)\nendobj\n"
        }
        let xref = body.utf8.count
        body += "xref\n0 \(objects.count + 1)\n0000000000 65535 f \n"
        for offset in offsets { body += String(format: "%010d 00000 n \n", offset) }
        body += "trailer\n<< /Size \(objects.count + 1) /Root 1 0 R \(trailer) >>\nstartxref\n\(xref)\n%%EOF\n"
        return Array(body.utf8)
    }

    /// A one-page PDF whose standard security handler wants a user password we do not have.
    static var encrypted: [UInt8] {
        let filler = String(repeating: "5A", count: 32)
        return make(
            objects: [
                "<< /Type /Catalog /Pages 2 0 R >>",
                "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
                "<< /Filter /Standard /V 1 /R 2 /O <\(filler)> /U <\(filler)> /P -4 >>",
            ],
            trailer: "/Encrypt 4 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> <0123456789ABCDEF0123456789ABCDEF>]")
    }

    static var noPages: [UInt8] {
        make(objects: ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [] /Count 0 >>"])
    }

    static var corrupt: [UInt8] {
        Array("%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> garbage \u{1}\u{2}\u{3} no xref, no trailer".utf8)
    }
}

/// A PNG whose header claims 100,000 × 100,000 pixels: 10 gigapixels behind a few dozen bytes.
enum Bomb {
    static var png: [UInt8] {
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]
        var chunk = Array("IHDR".utf8)
        for value in [UInt32(100_000), UInt32(100_000)] { chunk += withUnsafeBytes(of: value.bigEndian, Array.init) }
        chunk += [8, 0, 0, 0, 0]
        bytes += chunk + withUnsafeBytes(of: crc32(chunk).bigEndian, Array.init)
        return bytes + [0, 0, 0, 0] + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82]
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}

/// Builds DOCX files in memory: just `word/document.xml` (what the extractor reads) and content types.
enum DOCX {
    static func make(body: String) throws -> [UInt8] {
        let xml = """
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>\(body)</w:body></w:document>
            """
        let archive = try Archive(accessMode: .create)
        for (path, text) in [("word/document.xml", xml), ("[Content_Types].xml", "<Types/>")] {
            let data = Data(text.utf8)
            try archive.addEntry(with: path, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate) { position, size in
                data.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        return [UInt8](archive.data ?? Data())
    }

    static func paragraph(_ text: String) -> String { "<w:p><w:r><w:t xml:space=\"preserve\">\(text)</w:t></w:r></w:p>" }
}
