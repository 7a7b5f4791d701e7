-- Handled workflow events are only the outbox's record that an event was relayed and handled (the runs keep
-- the history), so the relay deletes them once they are old (`OutboxRelay`, `eventRetention`); this index
-- finds them without reading the whole table.
CREATE INDEX workflow_events_processed ON workflow_events (processed_at) WHERE processed_at IS NOT NULL;
