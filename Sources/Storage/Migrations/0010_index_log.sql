-- Which documents each index batch wrote, in order, so an in-memory keyword index can merge their postings
-- instead of reading every posting of the organisation again (12M at 198k chunks). Written in the index
-- batch's own transaction; rows older than an hour are dropped by the index stage as it goes.
CREATE TABLE index_log (
    org_id       uuid NOT NULL,
    seq          bigserial NOT NULL,
    document_ids uuid[] NOT NULL,
    logged_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, seq)
);
