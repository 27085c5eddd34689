-- The gateway's schema. Portable SQL for SQLite and PostgreSQL; {{serial}}
-- is replaced by the dialect's auto-increment primary key type. Times are
-- Unix milliseconds (BIGINT), written by the gateway's clock, so comparisons
-- need no dialect-specific time functions.

CREATE TABLE meta (
	k TEXT PRIMARY KEY,
	v TEXT NOT NULL
);

CREATE TABLE admin_keys (
	key_hash   TEXT PRIMARY KEY,
	created_at BIGINT NOT NULL
);

CREATE TABLE tenants (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	key_hash      TEXT NOT NULL UNIQUE,
	secret        TEXT NOT NULL,
	credit_budget BIGINT,
	credits_used  BIGINT NOT NULL DEFAULT 0,
	created_at    BIGINT NOT NULL
);

CREATE TABLE jobs (
	id              TEXT PRIMARY KEY,
	tenant_id       TEXT NOT NULL REFERENCES tenants (id),
	tool            TEXT NOT NULL,
	kind            TEXT NOT NULL,
	params          TEXT NOT NULL,
	status          TEXT NOT NULL,
	upstream_id     TEXT,
	upstream_status TEXT,
	idempotency_key TEXT,
	metadata        TEXT,
	callback_url    TEXT,
	credits         BIGINT NOT NULL DEFAULT 0,
	error_code      TEXT,
	error_message   TEXT,
	created_at      BIGINT NOT NULL,
	updated_at      BIGINT NOT NULL,
	submitted_at    BIGINT,
	expected_at     BIGINT,
	finished_at     BIGINT,
	next_run_at     BIGINT,
	lease_owner     TEXT,
	lease_until     BIGINT,
	attempts        INTEGER NOT NULL DEFAULT 0,
	polls           INTEGER NOT NULL DEFAULT 0,
	version         BIGINT NOT NULL DEFAULT 0,
	UNIQUE (tenant_id, idempotency_key)
);

CREATE INDEX jobs_due ON jobs (next_run_at) WHERE next_run_at IS NOT NULL;
CREATE INDEX jobs_tenant ON jobs (tenant_id, id);
CREATE UNIQUE INDEX jobs_upstream ON jobs (upstream_id);

CREATE TABLE outputs (
	job_id       TEXT NOT NULL REFERENCES jobs (id),
	idx          INTEGER NOT NULL,
	upstream_url TEXT NOT NULL,
	expires_at   BIGINT,
	storage_key  TEXT,
	size         BIGINT,
	sha256       TEXT,
	content_type TEXT,
	stored_at    BIGINT,
	PRIMARY KEY (job_id, idx)
);

CREATE TABLE events (
	id         {{serial}},
	job_id     TEXT NOT NULL,
	type       TEXT NOT NULL,
	data       TEXT,
	created_at BIGINT NOT NULL
);

CREATE INDEX events_job ON events (job_id, id);

CREATE TABLE webhook_deliveries (
	body_sha256 TEXT PRIMARY KEY,
	received_at BIGINT NOT NULL
);
