-- Workflows (issue 7): rules an organisation's admins define — a trigger, conditions, actions — and the
-- review states documents move through.
CREATE TABLE workflows (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name        text NOT NULL,
    trigger     text NOT NULL CHECK (trigger IN ('document.uploaded', 'document.processed', 'document.failed')),
    enabled     boolean NOT NULL DEFAULT true,
    -- conditions, actions (webhook secrets included) and review states, as validated by the API
    definition  jsonb NOT NULL,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);
CREATE INDEX workflows_org_trigger ON workflows (org_id, trigger) WHERE enabled;

-- Transactional outbox: a row is written in the transaction that changes the document (registration, the
-- last stage's commit, a failure), only when the organisation has an enabled workflow for the trigger.
-- The relay publishes unpublished rows to the `workflow` queue, so a crash after the commit loses nothing.
CREATE TABLE workflow_events (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    document_id   uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    trigger       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at  timestamptz,
    processed_at  timestamptz
);
CREATE INDEX workflow_events_unpublished ON workflow_events (created_at) WHERE published_at IS NULL;

-- One evaluation of one workflow for one event; the unique key makes a redelivered event a no-op.
CREATE TABLE workflow_runs (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    workflow_id  uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    event_id     uuid NOT NULL,
    document_id  uuid NOT NULL,
    trigger      text NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('matched', 'not_matched', 'failed')),
    actions      jsonb NOT NULL DEFAULT '[]',
    error        text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (event_id, workflow_id)
);
CREATE INDEX workflow_runs_workflow ON workflow_runs (workflow_id, created_at DESC, id DESC);

-- Webhook calls, delivered by the webhook worker through its own queue (retries, dead letters). The body
-- and its signature are fixed when the run is recorded, so every attempt sends the same bytes; the
-- secret itself stays in the workflow.
CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    org_id           uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    run_id           uuid NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    action_index     integer NOT NULL,
    url              text NOT NULL,
    payload          text NOT NULL,
    signature        text NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    response_status  integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at     timestamptz,
    finished_at      timestamptz,
    UNIQUE (run_id, action_index)
);
CREATE INDEX webhook_deliveries_unpublished ON webhook_deliveries (created_at) WHERE published_at IS NULL;

-- Review: the state a workflow put the document in, which workflow's transitions govern it, and who it
-- is assigned to.
ALTER TABLE documents ADD COLUMN review_state text;
ALTER TABLE documents ADD COLUMN review_workflow_id uuid REFERENCES workflows (id) ON DELETE SET NULL;
ALTER TABLE documents ADD COLUMN assignee_id uuid REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX documents_review_state ON documents (org_id, review_state) WHERE review_state IS NOT NULL;

-- Every change of review state: by a workflow (actor NULL) or by a member through the API.
CREATE TABLE document_transitions (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    document_id  uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    workflow_id  uuid REFERENCES workflows (id) ON DELETE SET NULL,
    from_state   text,
    to_state     text NOT NULL,
    comment      text,
    actor_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX document_transitions_document ON document_transitions (document_id, created_at);
