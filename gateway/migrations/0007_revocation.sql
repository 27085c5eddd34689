-- Revocation (issue 11 item 6): dashboard sessions kept server-side (so
-- sign-out, key rotation and tenant disable end them), key rotation with an
-- overlap window (the previous tenant key, admin keys' expiry), tenant
-- disable.

CREATE TABLE sessions (
	id_hash    TEXT PRIMARY KEY, -- hex sha256 of the random id in the cookie
	principal  TEXT NOT NULL,    -- "admin" or a tenant id
	key_hash   TEXT NOT NULL,    -- the key that signed in
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);

CREATE INDEX sessions_principal ON sessions (principal);

ALTER TABLE tenants ADD COLUMN prev_key_hash TEXT;
ALTER TABLE tenants ADD COLUMN prev_key_until BIGINT;
ALTER TABLE tenants ADD COLUMN disabled_at BIGINT;
CREATE INDEX tenants_prev_key ON tenants (prev_key_hash);

ALTER TABLE admin_keys ADD COLUMN expires_at BIGINT;
