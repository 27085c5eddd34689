-- The dashboard's list stream reads jobs changed since a time, and its
-- overview reads recent events by type.
CREATE INDEX jobs_updated_at ON jobs (updated_at);
CREATE INDEX events_type_created ON events (type, created_at);
