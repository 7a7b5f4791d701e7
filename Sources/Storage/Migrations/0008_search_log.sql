-- One row per API search, for GET /v1/orgs/{org}/analytics/search (top queries, queries without results)
-- and searches over time. The query text stays inside its organisation like its documents.
CREATE TABLE search_log (
    id          bigserial PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    query       text NOT NULL,
    mode        text NOT NULL,
    results     integer NOT NULL,
    latency_ms  integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX search_log_org_time ON search_log (org_id, created_at);
-- Analytics read stage runs of one organisation over a window.
CREATE INDEX stage_runs_org_finished ON stage_runs (org_id, finished_at);
