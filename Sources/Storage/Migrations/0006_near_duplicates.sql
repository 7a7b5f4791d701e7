-- Near duplicates: a document whose text is at least 90% similar (Jaccard over word shingles) to an earlier
-- one of the same organisation points at it. Still indexed; search can collapse it into the earlier one.
ALTER TABLE documents ADD COLUMN near_duplicate_of uuid REFERENCES documents (id) ON DELETE SET NULL;
ALTER TABLE documents ADD COLUMN near_duplicate_similarity real;
CREATE INDEX documents_near_duplicate_of ON documents (near_duplicate_of) WHERE near_duplicate_of IS NOT NULL;

-- MinHash LSH: one row per document and band; documents sharing a (band, bucket) are candidates.
CREATE TABLE document_lsh (
    org_id       uuid NOT NULL,
    band         smallint NOT NULL,
    bucket       bigint NOT NULL,
    document_id  uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, band, bucket, document_id)
);
CREATE INDEX document_lsh_document ON document_lsh (document_id);

-- Documents registered in one statement (a batch of an import) get increasing creation times in the order
-- they were found, so "the older of two near duplicates" follows the import order.
ALTER TABLE documents ALTER COLUMN created_at SET DEFAULT clock_timestamp();
