-- The signed timestamp of a delivery kept in the inbox, so the event that
-- applies it later records its lag like a directly applied one.
ALTER TABLE webhook_inbox ADD COLUMN signed_at BIGINT;
