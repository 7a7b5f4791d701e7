-- `intellidocs queues --watch` reads recent stage durations every second.
CREATE INDEX stage_runs_finished ON stage_runs (finished_at) WHERE status = 'succeeded';
