-- OCR: pages that have no text yet. Ingest stores a placeholder row (empty text, source 'ocr',
-- needs_ocr = true) for every scanned PDF page and every image page; the ocr stage fills in the text and
-- confidence and clears the flag. The partial index keeps "this document's pages that still need OCR"
-- cheap however many pages the table holds.
ALTER TABLE pages ADD COLUMN needs_ocr boolean NOT NULL DEFAULT false;
ALTER TABLE pages ADD CONSTRAINT pages_needs_ocr_source CHECK (NOT needs_ocr OR source = 'ocr');
CREATE INDEX pages_needs_ocr ON pages (org_id, document_id) WHERE needs_ocr;
