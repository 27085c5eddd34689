package gateway

// Fair claiming across tenants. The claim takes, from every tenant, its
// due jobs in due order (at most the claim's size each, through the
// jobs_tenant_due index), ranks each job within its tenant, and leases the
// lowest ranks first: one job of every tenant with due work, then a second
// of each, and so on (round-robin). Among equal ranks the tenant with fewer
// jobs already in flight upstream goes first, due order breaking the
// remaining ties: a claim of a single job (one free worker) would otherwise
// always take the oldest due job, which is plain FIFO. So 300 jobs of one
// tenant do not queue another tenant's single job behind them. The
// per-tenant max_in_flight check is unchanged (in the creating save).

// tenantInFlight counts a tenant's jobs that are upstream (through the
// jobs_tenant_status index).
const tenantInFlight = "(SELECT COUNT(*) FROM jobs f WHERE f.tenant_id = c.tenant_id AND " +
	"f.status IN ('creating', 'submitted', 'queued', 'rendering', 'storing'))"

// claimDue is the condition of a claimable job (alias c), its tenant t.
const claimDue = "c.next_run_at IS NOT NULL AND c.next_run_at <= ? AND (c.lease_until IS NULL OR c.lease_until < ?) " +
	"AND NOT (c.status = 'pending' AND COALESCE(t.throttled_until, 0) > ?)"

// fairClaimSQL returns the claim statement; its arguments are owner,
// until, now, now, now, limit (per tenant), limit, now, now.
func (d dialect) fairClaimSQL() string {
	var candidates string
	if d.name == "postgres" {
		// FOR UPDATE SKIP LOCKED cannot sit with a window function, so the
		// rows are locked in the per-tenant subquery and ranked outside it.
		candidates = "FROM tenants t CROSS JOIN LATERAL (SELECT c.id, c.tenant_id, c.next_run_at FROM jobs c WHERE c.tenant_id = t.id AND " +
			claimDue + " ORDER BY c.next_run_at LIMIT ?" + d.lockSkip + ") c"
	} else {
		candidates = "FROM tenants t JOIN jobs c ON c.id IN (SELECT c.id FROM jobs c WHERE c.tenant_id = t.id AND " +
			claimDue + " ORDER BY c.next_run_at LIMIT ?)"
	}
	return "UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id IN (" +
		"SELECT id FROM (SELECT c.id AS id, c.next_run_at AS nr, " +
		"ROW_NUMBER() OVER (PARTITION BY c.tenant_id ORDER BY c.next_run_at, c.id) AS rn, " +
		tenantInFlight + " AS busy " + candidates +
		") ranked ORDER BY rn, busy, nr LIMIT ?) " +
		"AND next_run_at <= ? AND (lease_until IS NULL OR lease_until < ?) RETURNING " + jobCols
}
