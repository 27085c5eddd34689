-- Fair claiming across tenants: each tenant's due jobs in due order, so
-- the claim reads a few rows per tenant instead of every due job.
CREATE INDEX jobs_tenant_due ON jobs (tenant_id, next_run_at) WHERE next_run_at IS NOT NULL;
