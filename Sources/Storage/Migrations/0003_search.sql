-- Search structures: BM25 postings and statistics, and one embedding per chunk.
-- Statistics are kept exact by statement-level triggers on the postings, so every path that adds or
-- removes postings (the index stage, a re-chunk, a document delete cascading) keeps them right.

CREATE TABLE chunk_terms (
    org_id       uuid NOT NULL,
    term         text NOT NULL,
    document_id  uuid NOT NULL,
    chunk_index  integer NOT NULL,
    tf           integer NOT NULL CHECK (tf > 0),
    -- The chunk's length in terms (BM25's |d|), repeated per posting to avoid a join at query time.
    chunk_length integer NOT NULL CHECK (chunk_length > 0),
    PRIMARY KEY (org_id, term, document_id, chunk_index),
    FOREIGN KEY (document_id, chunk_index) REFERENCES chunks (document_id, chunk_index) ON DELETE CASCADE
);
CREATE INDEX chunk_terms_document ON chunk_terms (document_id);

CREATE TABLE term_stats (
    org_id  uuid NOT NULL,
    term    text NOT NULL,
    df      integer NOT NULL,
    PRIMARY KEY (org_id, term)
);

CREATE TABLE search_stats (
    -- No foreign key: the triggers write here while an organisation's rows are being deleted.
    org_id        uuid PRIMARY KEY,
    chunks        bigint NOT NULL DEFAULT 0,
    total_length  bigint NOT NULL DEFAULT 0,
    -- Bumped on every change, so a search process knows its in-memory structures are stale.
    version       bigint NOT NULL DEFAULT 0,
    deletions     bigint NOT NULL DEFAULT 0
);

CREATE FUNCTION chunk_terms_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO term_stats (org_id, term, df)
    SELECT org_id, term, count(*) FROM added GROUP BY org_id, term ORDER BY org_id, term
    ON CONFLICT (org_id, term) DO UPDATE SET df = term_stats.df + EXCLUDED.df;
    INSERT INTO search_stats (org_id, chunks, total_length, version)
    SELECT org_id, count(DISTINCT (document_id, chunk_index)), sum(tf), 1 FROM added GROUP BY org_id ORDER BY org_id
    ON CONFLICT (org_id) DO UPDATE SET chunks = search_stats.chunks + EXCLUDED.chunks,
        total_length = search_stats.total_length + EXCLUDED.total_length, version = search_stats.version + 1;
    RETURN NULL;
END $$;

CREATE FUNCTION chunk_terms_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO term_stats (org_id, term, df)
    SELECT org_id, term, -count(*) FROM removed GROUP BY org_id, term ORDER BY org_id, term
    ON CONFLICT (org_id, term) DO UPDATE SET df = term_stats.df + EXCLUDED.df;
    DELETE FROM term_stats t USING (SELECT DISTINCT org_id, term FROM removed) r
    WHERE t.org_id = r.org_id AND t.term = r.term AND t.df <= 0;
    INSERT INTO search_stats (org_id, chunks, total_length, version, deletions)
    SELECT org_id, -count(DISTINCT (document_id, chunk_index)), -sum(tf), 1, 1 FROM removed GROUP BY org_id ORDER BY org_id
    ON CONFLICT (org_id) DO UPDATE SET chunks = search_stats.chunks + EXCLUDED.chunks,
        total_length = search_stats.total_length + EXCLUDED.total_length, version = search_stats.version + 1,
        deletions = search_stats.deletions + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER chunk_terms_after_insert AFTER INSERT ON chunk_terms
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION chunk_terms_added();
CREATE TRIGGER chunk_terms_after_delete AFTER DELETE ON chunk_terms
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION chunk_terms_removed();

-- One embedding per chunk: float32 little-endian bytes, with the model that made it, so a model change is
-- detectable. `seq` orders additions for incremental loading into the in-memory vector index.
CREATE TABLE chunk_vectors (
    document_id  uuid NOT NULL,
    chunk_index  integer NOT NULL,
    org_id       uuid NOT NULL,
    model        text NOT NULL,
    dimension    integer NOT NULL CHECK (dimension > 0),
    embedding    bytea NOT NULL CHECK (length(embedding) = 4 * dimension),
    seq          bigserial NOT NULL,
    PRIMARY KEY (document_id, chunk_index),
    FOREIGN KEY (document_id, chunk_index) REFERENCES chunks (document_id, chunk_index) ON DELETE CASCADE
);
CREATE INDEX chunk_vectors_org_seq ON chunk_vectors (org_id, seq);

-- Searchable means indexed: the index stage sets this, and search filters on it.
ALTER TABLE chunks ADD COLUMN indexed boolean NOT NULL DEFAULT false;

-- Free-form labels, set by API clients and workflows; search filters on them.
ALTER TABLE documents ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX documents_tags ON documents USING gin (tags);

-- Chunks indexed before this migration (keyword search through `tsv`) get their postings now, so an
-- upgrade keeps every indexed document searchable.
INSERT INTO chunk_terms (org_id, term, document_id, chunk_index, tf, chunk_length)
SELECT org_id, term, document_id, chunk_index, tf, sum(tf) OVER (PARTITION BY document_id, chunk_index)
FROM (
    SELECT c.org_id, t.lexeme AS term, c.document_id, c.chunk_index, coalesce(array_length(t.positions, 1), 1) AS tf
    FROM chunks c CROSS JOIN LATERAL unnest(to_tsvector('english', c.text)) AS t
    WHERE c.tsv IS NOT NULL
) postings
ORDER BY term;
UPDATE chunks SET indexed = true WHERE tsv IS NOT NULL;
