-- Webhooks for a project whose create's answer the gateway has not recorded
-- yet (the webhook outran the create's response). They are kept here and
-- applied as soon as the upstream id is recorded, instead of waiting for the
-- fallback poll. Rows for projects that never become a job (another app on
-- the same Magic Hour account) are deleted after a short time.
CREATE TABLE webhook_inbox (
	body_sha256 TEXT PRIMARY KEY,
	upstream_id TEXT NOT NULL,
	type        TEXT NOT NULL,
	body        TEXT NOT NULL,
	received_at BIGINT NOT NULL
);

CREATE INDEX webhook_inbox_upstream ON webhook_inbox (upstream_id);
CREATE INDEX webhook_inbox_received ON webhook_inbox (received_at);
