-- Drop-in API, callbacks, budgets and limits, uploads, retention.

ALTER TABLE tenants ADD COLUMN max_in_flight INTEGER;
ALTER TABLE tenants ADD COLUMN delete_upstream_after_store INTEGER NOT NULL DEFAULT 0;
-- Set when a pending job of the tenant found max_in_flight reached: the
-- claim skips the tenant's pending jobs until then (cheap back-pressure).
ALTER TABLE tenants ADD COLUMN throttled_until BIGINT;

ALTER TABLE jobs ADD COLUMN delete_upstream INTEGER NOT NULL DEFAULT 0;
-- The upstream project as last seen at completion or error (JSON), for the
-- drop-in project shape (width, height, type, fps, ...).
ALTER TABLE jobs ADD COLUMN upstream_project TEXT;
-- Deleted through the drop-in API (DELETE /v1/*-projects/{id}): 404 there.
ALTER TABLE jobs ADD COLUMN deleted_at BIGINT;

CREATE INDEX jobs_tenant_status ON jobs (tenant_id, status);
CREATE INDEX events_created ON events (created_at);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);

-- Files uploaded to the gateway (drop-in upload URLs, POST /api/uploads);
-- uploaded to Magic Hour by the worker before the create that uses them.
CREATE TABLE uploads (
	id            TEXT PRIMARY KEY,
	tenant_id     TEXT NOT NULL REFERENCES tenants (id),
	media         TEXT NOT NULL,
	ext           TEXT NOT NULL,
	token_hash    TEXT NOT NULL,
	storage_key   TEXT,
	size          BIGINT,
	sha256        TEXT,
	upstream_path TEXT,
	created_at    BIGINT NOT NULL,
	expires_at    BIGINT NOT NULL,
	stored_at     BIGINT
);

-- Face detections proxied for a tenant (upstream id), for isolation.
CREATE TABLE face_detections (
	id         TEXT PRIMARY KEY,
	tenant_id  TEXT NOT NULL REFERENCES tenants (id),
	created_at BIGINT NOT NULL
);

-- The callback outbox: one row per event to deliver to a job's
-- callback_url, claimed with a lease like jobs.
CREATE TABLE callbacks (
	id           {{serial}},
	job_id       TEXT NOT NULL,
	tenant_id    TEXT NOT NULL,
	type         TEXT NOT NULL,
	url          TEXT NOT NULL,
	body         TEXT NOT NULL,
	status       TEXT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_run_at  BIGINT,
	lease_owner  TEXT,
	lease_until  BIGINT,
	last_code    INTEGER,
	last_error   TEXT,
	created_at   BIGINT NOT NULL,
	delivered_at BIGINT
);

CREATE INDEX callbacks_due ON callbacks (next_run_at) WHERE next_run_at IS NOT NULL;
CREATE INDEX callbacks_job ON callbacks (job_id, id);

-- One row per delivery attempt.
CREATE TABLE callback_attempts (
	id          {{serial}},
	callback_id BIGINT NOT NULL,
	job_id      TEXT NOT NULL,
	attempt     INTEGER NOT NULL,
	status_code INTEGER,
	error       TEXT,
	duration_ms BIGINT NOT NULL,
	created_at  BIGINT NOT NULL
);

CREATE INDEX callback_attempts_cb ON callback_attempts (callback_id, id);
