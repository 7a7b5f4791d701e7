public import Foundation
public import PostgresNIO

/// One OCR'd page, as the ocr stage stores it.
public struct OCRPageText: Sendable, Equatable {
    public let documentID: UUID
    public let number: Int
    public let text: String
    /// Tesseract's mean word confidence, 0–100.
    public let confidence: Float

    public init(documentID: UUID, number: Int, text: String, confidence: Float) {
        self.documentID = documentID
        self.number = number
        self.text = text
        self.confidence = confidence
    }
}

extension ContentRepository {
    /// The page numbers, per document, of pages still waiting for OCR (placeholders written by ingest).
    public func pagesNeedingOCR(documentIDs: [UUID], orgID: UUID, on connection: PostgresConnection) async throws -> [UUID: [Int]] {
        let rows = try await connection.query(
            """
            SELECT document_id, page_number FROM pages
            WHERE org_id IS NOT DISTINCT FROM \(orgID) AND document_id = ANY(\(documentIDs)::uuid[]) AND needs_ocr
            ORDER BY document_id, page_number
            """, logger: logger)
        var pages: [UUID: [Int]] = [:]
        for try await (document, number) in rows.decode((UUID, Int32).self) {
            pages[document, default: []].append(Int(number))
        }
        return pages
    }

    /// Stores OCR text and confidence on placeholder pages and clears their `needs_ocr` flag. Writing the
    /// same results again changes nothing, so a retried ocr job leaves exactly one result per page.
    public func storeOCRText(_ pages: [OCRPageText], orgID: UUID, on connection: PostgresConnection) async throws {
        if pages.isEmpty { return }
        try await connection.query(
            """
            UPDATE pages p SET text = o.text, source = 'ocr', confidence = o.confidence, needs_ocr = false
            FROM unnest(\(pages.map(\.documentID))::uuid[], \(pages.map { Int32($0.number) })::int[],
                        \(pages.map(\.text))::text[], \(pages.map(\.confidence))::real[])
                 AS o(document_id, page_number, text, confidence)
            WHERE p.org_id = \(orgID) AND p.document_id = o.document_id AND p.page_number = o.page_number
            """, logger: logger)
    }
}
