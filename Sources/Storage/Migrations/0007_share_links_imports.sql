-- What an import found, for GET /v1/orgs/{org}/imports/{id}.
ALTER TABLE imports ADD COLUMN stored integer NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN duplicates integer NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN skipped integer NOT NULL DEFAULT 0;

-- Public, read-only links to one document. The token is shown once and stored as its SHA-256; a password
-- (optional) as its bcrypt hash. A link answers until it expires, is revoked or has been viewed max_views
-- times; every view is counted here and recorded in the audit log.
CREATE TABLE share_links (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    document_id     uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    token_hash      text NOT NULL UNIQUE,
    expires_at      timestamptz NOT NULL,
    password_hash   text,
    max_views       integer CHECK (max_views > 0),
    views           integer NOT NULL DEFAULT 0,
    allow_download  boolean NOT NULL DEFAULT false,
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
CREATE INDEX share_links_org ON share_links (org_id, created_at DESC);
CREATE INDEX share_links_document ON share_links (document_id);
