package gateway

import (
	"context"
	"time"
)

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// inFlightStatuses are the statuses that count against max_in_flight.
const inFlightSQL = "('creating', 'submitted', 'queued', 'rendering')"

// checkInFlight fails with ErrThrottled when the tenant already has limit
// jobs in flight. The tenant row is locked first (PostgreSQL: FOR UPDATE;
// SQLite transactions are serialized), so two workers cannot both pass.
func (s *sqlStore) checkInFlight(ctx context.Context, tx *sqlTx, j *Job, limit int, _ time.Duration) error {
	lock := "SELECT id FROM tenants WHERE id = ?"
	if s.d.name == "postgres" {
		lock += " FOR UPDATE"
	}
	var id string
	if err := tx.QueryRowContext(ctx, s.d.q(lock), j.TenantID).Scan(&id); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.d.q("SELECT COUNT(*) FROM jobs WHERE tenant_id = ? AND id <> ? AND status IN "+inFlightSQL),
		j.TenantID, j.ID).Scan(&n); err != nil {
		return err
	}
	if n >= limit {
		return ErrThrottled
	}
	return nil
}

func (s *sqlStore) UpdateTenantLimits(ctx context.Context, t *Tenant) error {
	var budget, maxInFlight any
	if t.CreditBudget != nil {
		budget = *t.CreditBudget
	}
	if t.MaxInFlight != nil {
		maxInFlight = *t.MaxInFlight
	}
	res, err := s.w.ExecContext(ctx, s.d.q("UPDATE tenants SET credit_budget = ?, max_in_flight = ?, delete_upstream_after_store = ? WHERE id = ?"),
		budget, maxInFlight, boolInt(t.DeleteUpstreamAfterStore), t.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
