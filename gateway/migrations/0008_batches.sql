-- Batches (POST /api/batches): a named group of a tenant's jobs, submitted
-- together and idempotent by key. A job belongs to at most one batch;
-- batch_line is its line in the batch file.

CREATE TABLE batches (
	id              TEXT PRIMARY KEY,
	tenant_id       TEXT NOT NULL REFERENCES tenants (id),
	idempotency_key TEXT,
	name            TEXT NOT NULL DEFAULT '',
	created_at      BIGINT NOT NULL,
	updated_at      BIGINT NOT NULL,
	UNIQUE (tenant_id, idempotency_key)
);

CREATE INDEX batches_tenant ON batches (tenant_id, id);

ALTER TABLE jobs ADD COLUMN batch_id TEXT;

ALTER TABLE jobs ADD COLUMN batch_line INTEGER;

CREATE INDEX jobs_batch ON jobs (batch_id, batch_line) WHERE batch_id IS NOT NULL;
