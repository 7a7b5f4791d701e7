-- Core tables of the pipeline backbone: organisations, documents, stage runs, pages and chunks.
-- Every row carries org_id: there is no query without it (DESIGN.md, Tenancy).

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One run of `intellidocs import` (or an API upload batch). Running the same import again (same
-- organisation, sources and format) while it is still `running` resumes it.
CREATE TABLE imports (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    import_key   text NOT NULL,
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed')),
    files_found  integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE UNIQUE INDEX imports_running ON imports (org_id, import_key) WHERE status = 'running';

CREATE TABLE documents (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    import_id     uuid REFERENCES imports(id) ON DELETE SET NULL,
    external_id   text,
    title         text NOT NULL,
    source_path   text,
    mime_type     text,
    size_bytes    bigint NOT NULL CHECK (size_bytes >= 0),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- queued → processing → succeeded | failed (see Sources/Pipeline/States.md)
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'processing', 'succeeded', 'failed')),
    error         text,
    failed_stage  text,
    page_count    integer,
    -- Set once the broker confirmed the first job. NULL rows are re-published by the next import run.
    published_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, sha256)
);
CREATE INDEX documents_org_status ON documents (org_id, status);
CREATE INDEX documents_org_external ON documents (org_id, external_id);
CREATE INDEX documents_unpublished ON documents (org_id) WHERE published_at IS NULL;

CREATE TABLE stage_runs (
    document_id  uuid NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    stage        text NOT NULL,
    org_id       uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- pending → running → succeeded | retrying | failed
    status       text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'retrying', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    started_at   timestamptz,
    finished_at  timestamptz,
    error        text,
    PRIMARY KEY (document_id, stage)
);
CREATE INDEX stage_runs_org_stage ON stage_runs (org_id, stage, status);

CREATE TABLE pages (
    document_id  uuid NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page_number  integer NOT NULL CHECK (page_number >= 1),
    org_id       uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    text         text NOT NULL,
    source       text NOT NULL CHECK (source IN ('text', 'text-layer', 'ocr')),
    confidence   real,
    PRIMARY KEY (document_id, page_number)
);

CREATE TABLE chunks (
    document_id   uuid NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    chunk_index   integer NOT NULL CHECK (chunk_index >= 0),
    org_id        uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    page_number   integer NOT NULL,
    end_page      integer NOT NULL,
    start_offset  integer NOT NULL,
    end_offset    integer NOT NULL,
    text          text NOT NULL,
    -- Filled by the index stage; NULL means "not searchable yet".
    tsv           tsvector,
    PRIMARY KEY (document_id, chunk_index)
);
CREATE INDEX chunks_org ON chunks (org_id);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
