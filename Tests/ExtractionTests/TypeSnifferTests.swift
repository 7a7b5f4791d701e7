import Testing

@testable import Extraction

/// Real file headers, built byte by byte the way each format's specification lays them out.
enum Headers {
    /// The header line, then the binary comment PDF writers add so that transfer tools treat it as binary.
    static let pdf =
        Array("%PDF-1.7\n%".utf8) + [0xE2, 0xE3, 0xCF, 0xD3]
        + Array("\n1 0 obj\n<< /Type /Catalog >>\nendobj\n".utf8)
    static let png: [UInt8] =
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]  // signature
        + [0x00, 0x00, 0x00, 0x0D] + Array("IHDR".utf8)  // IHDR chunk length and type
        + [0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00]
    static let jpeg: [UInt8] =
        [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array("JFIF".utf8) + [0x00, 0x01, 0x01, 0x00, 0x00, 0x48, 0x00, 0x48]
    static let tiffLittleEndian: [UInt8] = [0x49, 0x49, 0x2A, 0x00, 0x08, 0x00, 0x00, 0x00, 0x0C, 0x00]
    static let tiffBigEndian: [UInt8] = [0x4D, 0x4D, 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0C]
    static let gif: [UInt8] = Array("GIF89a".utf8) + [0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00]
    static let webp: [UInt8] =
        Array("RIFF".utf8) + [0x24, 0x00, 0x00, 0x00] + Array("WEBP".utf8) + Array("VP8 ".utf8)
        + [0x18, 0x00, 0x00, 0x00]

    /// A ZIP local file header for an uncompressed entry called `name` holding `content`.
    static func zipEntry(_ name: String, content: String = "x") -> [UInt8] {
        let nameBytes = Array(name.utf8)
        let data = Array(content.utf8)
        func le16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
        func le32(_ value: Int) -> [UInt8] { le16(value & 0xFFFF) + le16(value >> 16) }
        return [0x50, 0x4B, 0x03, 0x04] + le16(20) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0)
            + le32(data.count) + le32(data.count) + le16(nameBytes.count) + le16(0) + nameBytes + data
    }

    static let docx =
        zipEntry("[Content_Types].xml", content: "<Types/>") + zipEntry("_rels/.rels")
        + zipEntry("word/document.xml", content: "<w:document/>")
    static let zip = zipEntry("hello.txt", content: "hello")
}

@Suite("TypeSniffer")
struct TypeSnifferTests {
    @Test(
        "magic numbers win over names",
        arguments: [
            (Headers.pdf, DocumentKind.pdf), (Headers.png, .png), (Headers.jpeg, .jpeg),
            (Headers.tiffLittleEndian, .tiff), (Headers.tiffBigEndian, .tiff), (Headers.gif, .gif),
            (Headers.webp, .webp), (Headers.zip, .zip), (Headers.docx, .docx),
        ]
    )
    func magic(header: [UInt8], kind: DocumentKind) {
        let body = header + [UInt8](repeating: 0, count: 100)
        for name in [nil, "upload.bin", "notes.txt"] as [String?] {
            let sniffed = TypeSniffer.sniff(body, fileName: name)
            #expect(sniffed.kind == kind, "\(kind) named \(name ?? "nil")")
            #expect(sniffed.mimeType == kind.mimeType)
        }
    }

    @Test func mimeTypes() {
        #expect(TypeSniffer.sniff(Headers.pdf, fileName: nil).mimeType == "application/pdf")
        #expect(TypeSniffer.sniff(Headers.png, fileName: nil).mimeType == "image/png")
        #expect(
            TypeSniffer.sniff(Headers.docx, fileName: nil).mimeType
                == "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        #expect(TypeSniffer.sniff(Array("hi".utf8), fileName: nil).mimeType == "text/plain")
    }

    @Test func zipIsDocxByExtensionHint() {
        let zip = Headers.zipEntry("[Content_Types].xml")
        #expect(TypeSniffer.sniff(zip, fileName: "Report.DOCX").kind == .docx)
        #expect(TypeSniffer.sniff(zip, fileName: "archive.zip").kind == .zip)
    }

    @Test func pdfWithLeadingJunkNeedsThePDFExtension() {
        let bytes = Array("garbage line\r\n".utf8) + Headers.pdf
        #expect(TypeSniffer.sniff(bytes, fileName: "scan.pdf").kind == .pdf)
        #expect(TypeSniffer.sniff(bytes, fileName: nil).kind == .unknown)
    }

    @Test func plainUTF8Text() {
        let text = Array("Invoice 2024-117\nTotal: 1 234,50 € — paid.\n".utf8)
        #expect(TypeSniffer.sniff(text, fileName: nil).kind == .plainText)
        #expect(TypeSniffer.sniff(text, fileName: "invoice.txt").kind == .plainText)
        #expect(TypeSniffer.sniff(text, fileName: "README.md").kind == .markdown)
        #expect(TypeSniffer.sniff(text, fileName: "dir.v2/notes.markdown").kind == .markdown)
    }

    @Test func emptyFileIsTextSoExtractionCanSayItIsEmpty() {
        #expect(TypeSniffer.sniff([UInt8](), fileName: "empty.txt").kind == .plainText)
    }

    @Test func invalidUTF8IsUnknown() {
        let bytes: [UInt8] = Array("caf".utf8) + [0xE9] + Array(" au lait (Latin-1)".utf8)
        #expect(TypeSniffer.sniff(bytes, fileName: "menu.txt").kind == .unknown)
    }

    @Test func binaryWithTextExtensionIsUnknown() {
        var generator = SplitMix64(seed: 7)
        let noise = (0..<4096).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        #expect(TypeSniffer.sniff(noise, fileName: "notes.txt").kind == .unknown)
        // Valid UTF-8 but with NULs (UTF-16 without a byte-order mark looks like this).
        let utf16WithoutBOM = Array("plain words".utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        #expect(TypeSniffer.sniff(utf16WithoutBOM, fileName: "notes.txt").kind == .unknown)
        // Control-heavy ASCII.
        let controls = [UInt8](repeating: 0x01, count: 50) + Array(String(repeating: "a", count: 100).utf8)
        #expect(TypeSniffer.sniff(controls, fileName: "notes.txt") == SniffedType(.unknown))
    }

    @Test func utf16WithByteOrderMark() {
        let text = "Grüße, <p> is not at the start"
        let littleEndian: [UInt8] = [0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let bigEndian: [UInt8] = [0xFE, 0xFF] + text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        #expect(TypeSniffer.sniff(littleEndian, fileName: nil).kind == .plainText)
        #expect(TypeSniffer.sniff(bigEndian, fileName: nil).kind == .plainText)
        let html: [UInt8] =
            [0xFF, 0xFE] + "<!DOCTYPE html><p>x</p>".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        #expect(TypeSniffer.sniff(html, fileName: nil).kind == .html)
    }

    @Test func utf32IsUnknown() {
        #expect(
            TypeSniffer.sniff([0xFF, 0xFE, 0x00, 0x00, 0x41, 0x00, 0x00, 0x00], fileName: "a.txt").kind == .unknown)
    }

    @Test func htmlDetection() {
        func kind(_ text: String, _ name: String?) -> DocumentKind {
            TypeSniffer.sniff(Array(text.utf8), fileName: name).kind
        }
        #expect(kind("<!DOCTYPE html>\n<html><body>Hi</body></html>", nil) == .html)
        #expect(kind("\u{FEFF}  <!doctype HTML><title>x</title>", nil) == .html)
        #expect(kind("<?xml version=\"1.0\"?>\n<!-- generated -->\n<html xmlns=\"x\">", nil) == .html)
        #expect(kind("<html lang=en>", "page.txt") == .html)
        #expect(kind("<p>Hello</p>", nil) == .html)
        #expect(kind("<div class=x>Hello</div>", "page.txt") == .html)
        #expect(kind("Some intro\n<body>late</body>", nil) == .html)
        #expect(kind("Some intro\n<body>late</body>", "page.txt") == .plainText)
        #expect(kind("Notes about x < y and y > z", "page.html") == .plainText)
        #expect(kind("Notes with <em>emphasis</em>", "page.HTM") == .html)
        #expect(kind("<paragraph>not html</paragraph>", nil) == .plainText)
        #expect(kind("a < b", nil) == .plainText)
        // Markdown often opens with an HTML block; only a full HTML document overrides the extension.
        #expect(kind("<p align=\"center\"><img src=logo.png></p>\n\n# Project", "README.md") == .markdown)
        #expect(kind("<!DOCTYPE html><html></html>", "saved.md") == .html)
    }

    @Test func multiByteCharacterCutByTheWindowIsFine() {
        // 8191 ASCII bytes, then "é" (2 bytes) straddling the 8 KB window.
        let bytes = Array((String(repeating: "a", count: TypeSniffer.windowSize - 1) + "é and more").utf8)
        #expect(TypeSniffer.sniff(bytes, fileName: nil).kind == .plainText)
        // Callers may pass just the window (the ingest stage does).
        #expect(TypeSniffer.sniff(bytes.prefix(TypeSniffer.windowSize), fileName: nil).kind == .plainText)
        // Shorter input is the whole file, so a cut character there is an invalid file.
        #expect(TypeSniffer.sniff(bytes.prefix(TypeSniffer.windowSize).dropFirst(), fileName: nil).kind == .unknown)
    }

    @Test func acceptsAnyCollectionOfBytes() {
        #expect(TypeSniffer.sniff(Headers.png[...], fileName: nil).kind == .png)
        #expect(TypeSniffer.sniff(Headers.gif.lazy.map { $0 }, fileName: nil).kind == .gif)
    }

    @Test func fileExtensions() {
        #expect(TypeSniffer.fileExtension(of: "a/b.c/Report.Final.PDF") == "pdf")
        #expect(TypeSniffer.fileExtension(of: ".bashrc") == "")
        #expect(TypeSniffer.fileExtension(of: "Makefile") == "")
    }
}
