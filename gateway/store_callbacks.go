package gateway

import (
	"context"
	"database/sql"
	"time"
)

// --- callbacks ---

const callbackCols = "id, job_id, tenant_id, type, url, body, status, attempts, next_run_at, lease_owner, lease_until, " +
	"last_code, last_error, created_at, delivered_at"

func scanCallback(row scanner) (*Callback, error) {
	var c Callback
	var body string
	var next, until, code, delivered sql.NullInt64
	var owner, lastErr sql.NullString
	var created int64
	if err := row.Scan(&c.ID, &c.JobID, &c.TenantID, &c.Type, &c.URL, &body, &c.Status, &c.Attempts, &next, &owner, &until,
		&code, &lastErr, &created, &delivered); err != nil {
		return nil, err
	}
	c.Body = []byte(body)
	c.NextRunAt, c.LeaseUntil, c.DeliveredAt = fromMilli(next), fromMilli(until), fromMilli(delivered)
	c.LeaseOwner, c.LastCode, c.LastError = owner.String, int(code.Int64), lastErr.String
	c.CreatedAt = time.UnixMilli(created).UTC()
	return &c, nil
}

func (s *sqlStore) insertCallback(ctx context.Context, tx *sqlTx, c Callback) error {
	_, err := tx.ExecContext(ctx, s.d.q("INSERT INTO callbacks (job_id, tenant_id, type, url, body, status, attempts, next_run_at, created_at) "+
		"VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)"),
		c.JobID, c.TenantID, c.Type, c.URL, string(c.Body), CallbackPending, c.NextRunAt.UnixMilli(), c.CreatedAt.UnixMilli())
	return err
}

func (s *sqlStore) ClaimCallbacks(ctx context.Context, owner string, now, until time.Time, limit int) ([]*Callback, error) {
	q := "UPDATE callbacks SET lease_owner = ?, lease_until = ? WHERE id IN (" +
		"SELECT id FROM callbacks WHERE next_run_at IS NOT NULL AND next_run_at <= ? AND (lease_until IS NULL OR lease_until < ?) " +
		"ORDER BY next_run_at LIMIT ?" + s.d.lockSkip + ") " +
		"AND next_run_at <= ? AND (lease_until IS NULL OR lease_until < ?) RETURNING " + callbackCols
	n := now.UnixMilli()
	rows, err := s.w.QueryContext(ctx, s.d.q(q), owner, until.UnixMilli(), n, n, limit, n, n)
	return collect(rows, err, scanCallback)
}

func (s *sqlStore) FinishCallbackAttempt(ctx context.Context, cb *Callback, a CallbackAttempt, ev Event) error {
	return s.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.ExecContext(ctx, s.d.q("UPDATE callbacks SET status = ?, attempts = ?, next_run_at = ?, lease_owner = NULL, lease_until = NULL, "+
			"last_code = ?, last_error = ?, delivered_at = ? WHERE id = ? AND lease_owner = ?"),
			cb.Status, cb.Attempts, ntime(cb.NextRunAt), nint(cb.LastCode), nstr(cb.LastError), ntime(cb.DeliveredAt), cb.ID, cb.LeaseOwner)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrConflict
		}
		if _, err := tx.ExecContext(ctx, s.d.q("INSERT INTO callback_attempts (callback_id, job_id, attempt, status_code, error, duration_ms, created_at) "+
			"VALUES (?, ?, ?, ?, ?, ?, ?)"),
			cb.ID, cb.JobID, a.Attempt, nint(a.StatusCode), nstr(a.Error), a.Duration.Milliseconds(), a.CreatedAt.UnixMilli()); err != nil {
			return err
		}
		ev.JobID = cb.JobID
		return s.addEvent(ctx, tx, ev)
	})
}

func nint(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

func (s *sqlStore) Callbacks(ctx context.Context, jobID string) ([]*Callback, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q("SELECT "+callbackCols+" FROM callbacks WHERE job_id = ? ORDER BY id"), jobID)
	return collect(rows, err, scanCallback)
}

func (s *sqlStore) CallbackAttempts(ctx context.Context, callbackID int64) ([]CallbackAttempt, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q("SELECT id, callback_id, job_id, attempt, status_code, error, duration_ms, created_at "+
		"FROM callback_attempts WHERE callback_id = ? ORDER BY id"), callbackID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CallbackAttempt
	for rows.Next() {
		var a CallbackAttempt
		var code sql.NullInt64
		var e sql.NullString
		var dur, created int64
		if err := rows.Scan(&a.ID, &a.CallbackID, &a.JobID, &a.Attempt, &code, &e, &dur, &created); err != nil {
			return nil, err
		}
		a.StatusCode, a.Error = int(code.Int64), e.String
		a.Duration, a.CreatedAt = time.Duration(dur)*time.Millisecond, time.UnixMilli(created).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *sqlStore) NextCallbackDue(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.r.QueryRowContext(ctx, "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_run_at "+
		"THEN lease_until ELSE next_run_at END) FROM callbacks WHERE next_run_at IS NOT NULL").Scan(&next)
	if err != nil || !next.Valid {
		return time.Time{}, false, err
	}
	return time.UnixMilli(next.Int64), true, nil
}
