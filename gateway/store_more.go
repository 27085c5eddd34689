package gateway

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"time"
)

// extraStore is the part of Store added with the drop-in API, callbacks,
// limits and operations.
type extraStore interface {
	// UpdateTenantLimits sets a tenant's budget, in-flight limit and
	// upstream clean-up default.
	UpdateTenantLimits(ctx context.Context, t *Tenant) error

	CreateUpload(ctx context.Context, u *Upload) error
	// Upload returns an upload; tenantID "" matches any tenant.
	Upload(ctx context.Context, tenantID, id string) (*Upload, error)
	// UpdateUpload records the stored bytes or the upstream path.
	UpdateUpload(ctx context.Context, u *Upload) error

	AddFaceDetection(ctx context.Context, id, tenantID string, at time.Time) error
	FaceDetectionTenant(ctx context.Context, id string) (string, error)

	// ClaimCallbacks leases up to limit due callbacks.
	ClaimCallbacks(ctx context.Context, owner string, now, until time.Time, limit int) ([]*Callback, error)
	// FinishCallbackAttempt records an attempt and the callback's new
	// state (cb.Status, NextRunAt, ...) with a job event, atomically; the
	// lease must still be held (else ErrConflict).
	FinishCallbackAttempt(ctx context.Context, cb *Callback, a CallbackAttempt, ev Event) error
	Callbacks(ctx context.Context, jobID string) ([]*Callback, error)
	CallbackAttempts(ctx context.Context, callbackID int64) ([]CallbackAttempt, error)
	// NextCallbackDue returns the earliest time a callback may be due.
	NextCallbackDue(ctx context.Context) (time.Time, bool, error)

	// URLSigningKey returns the database-wide key that signs the gateway's
	// own download URLs (created on first use; shared by replicas).
	URLSigningKey(ctx context.Context) ([]byte, error)
	// CountJobsByStatus counts jobs per status (metrics).
	CountJobsByStatus(ctx context.Context) (map[Status]int64, error)
	// StorageBytes sums the sizes of stored outputs (metrics).
	StorageBytes(ctx context.Context) (int64, error)
	// Cleanup deletes events and callback rows of finished jobs, and
	// webhook dedupe rows, older than before; it returns the rows deleted.
	Cleanup(ctx context.Context, before time.Time) (int64, error)

	// AddInbox keeps a verified webhook for a project no job has recorded
	// yet (a repeat of the same body is a no-op).
	AddInbox(ctx context.Context, e InboxEntry) error
	// Inbox returns the kept webhooks of an upstream project, oldest first.
	Inbox(ctx context.Context, upstreamID string) ([]InboxEntry, error)
	// DeleteInbox removes a kept webhook (applied, or not applicable).
	DeleteInbox(ctx context.Context, hash string) error
	// CleanupInbox deletes kept webhooks received before before.
	CleanupInbox(ctx context.Context, before time.Time) (int64, error)
}

// InboxEntry is a verified webhook delivery for an upstream project that
// no job had recorded when it arrived.
type InboxEntry struct {
	Hash       string // hex sha256 of the body (the dedupe key)
	UpstreamID string
	Type       string
	Body       []byte
	ReceivedAt time.Time
	SignedAt   time.Time // the delivery's signed timestamp (zero: unknown)
}

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

// --- uploads ---

const uploadCols = "id, tenant_id, media, ext, token_hash, storage_key, size, sha256, upstream_path, created_at, expires_at, stored_at"

func (s *sqlStore) CreateUpload(ctx context.Context, u *Upload) error {
	_, err := s.w.ExecContext(ctx, s.d.q("INSERT INTO uploads ("+uploadCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		u.ID, u.TenantID, u.Media, u.Ext, u.TokenHash, nstr(u.StorageKey), nullSize(u), nstr(u.SHA256), nstr(u.UpstreamPath),
		u.CreatedAt.UnixMilli(), u.ExpiresAt.UnixMilli(), ntime(u.StoredAt))
	return err
}

func nullSize(u *Upload) any {
	if u.StoredAt.IsZero() {
		return nil
	}
	return u.Size
}

func (s *sqlStore) Upload(ctx context.Context, tenantID, id string) (*Upload, error) {
	q, args := "SELECT "+uploadCols+" FROM uploads WHERE id = ?", []any{id}
	if tenantID != "" {
		q, args = q+" AND tenant_id = ?", append(args, tenantID)
	}
	var u Upload
	var key, sum, up sql.NullString
	var size, stored sql.NullInt64
	var created, expires int64
	err := s.r.QueryRowContext(ctx, s.d.q(q), args...).Scan(&u.ID, &u.TenantID, &u.Media, &u.Ext, &u.TokenHash, &key, &size, &sum, &up,
		&created, &expires, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	u.StorageKey, u.Size, u.SHA256, u.UpstreamPath = key.String, size.Int64, sum.String, up.String
	u.CreatedAt, u.ExpiresAt, u.StoredAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC(), fromMilli(stored)
	return &u, nil
}

func (s *sqlStore) UpdateUpload(ctx context.Context, u *Upload) error {
	_, err := s.w.ExecContext(ctx, s.d.q("UPDATE uploads SET storage_key = ?, size = ?, sha256 = ?, upstream_path = ?, stored_at = ? WHERE id = ?"),
		nstr(u.StorageKey), nullSize(u), nstr(u.SHA256), nstr(u.UpstreamPath), ntime(u.StoredAt), u.ID)
	return err
}

// --- face detections ---

func (s *sqlStore) AddFaceDetection(ctx context.Context, id, tenantID string, at time.Time) error {
	_, err := s.w.ExecContext(ctx, s.d.q("INSERT INTO face_detections (id, tenant_id, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING"),
		id, tenantID, at.UnixMilli())
	return err
}

func (s *sqlStore) FaceDetectionTenant(ctx context.Context, id string) (string, error) {
	var t string
	err := s.r.QueryRowContext(ctx, s.d.q("SELECT tenant_id FROM face_detections WHERE id = ?"), id).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return t, err
}

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

// --- keys, metrics, retention ---

func (s *sqlStore) URLSigningKey(ctx context.Context) ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if _, err := s.w.ExecContext(ctx, s.d.q("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING"),
		"url_signing_key", hex.EncodeToString(b)); err != nil {
		return nil, err
	}
	var v string
	if err := s.r.QueryRowContext(ctx, s.d.q("SELECT v FROM meta WHERE k = ?"), "url_signing_key").Scan(&v); err != nil {
		return nil, err
	}
	return hex.DecodeString(v)
}

func (s *sqlStore) CountJobsByStatus(ctx context.Context) (map[Status]int64, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT status, COUNT(*) FROM jobs GROUP BY status")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[Status]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[Status(st)] = n
	}
	return out, rows.Err()
}

func (s *sqlStore) StorageBytes(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	err := s.r.QueryRowContext(ctx, "SELECT SUM(size) FROM outputs WHERE storage_key IS NOT NULL AND stored_at IS NOT NULL").Scan(&n)
	return n.Int64, err
}

func (s *sqlStore) Cleanup(ctx context.Context, before time.Time) (int64, error) {
	b := before.UnixMilli()
	finished := "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?"
	var total int64
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"DELETE FROM webhook_deliveries WHERE received_at < ?", []any{b}},
		{"DELETE FROM events WHERE created_at < ? AND job_id IN (" + finished + ")", []any{b, b}},
		{"DELETE FROM callback_attempts WHERE created_at < ? AND callback_id IN (SELECT id FROM callbacks WHERE next_run_at IS NULL)", []any{b}},
		{"DELETE FROM callbacks WHERE created_at < ? AND next_run_at IS NULL AND id NOT IN (SELECT callback_id FROM callback_attempts)", []any{b}},
	} {
		res, err := s.w.ExecContext(ctx, s.d.q(q.sql), q.args...)
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

// --- webhook inbox ---

func (s *sqlStore) AddInbox(ctx context.Context, e InboxEntry) error {
	_, err := s.w.ExecContext(ctx, s.d.q("INSERT INTO webhook_inbox (body_sha256, upstream_id, type, body, received_at, signed_at) "+
		"VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (body_sha256) DO NOTHING"),
		e.Hash, e.UpstreamID, e.Type, string(e.Body), e.ReceivedAt.UnixMilli(), ntime(e.SignedAt))
	return err
}

func (s *sqlStore) Inbox(ctx context.Context, upstreamID string) ([]InboxEntry, error) {
	// A reader sees every write committed before the query starts (WAL
	// snapshot per statement; PostgreSQL read committed), which is all
	// the inbox's handshake needs (see Gateway.drainInbox).
	rows, err := s.r.QueryContext(ctx, s.d.q("SELECT body_sha256, upstream_id, type, body, received_at, signed_at FROM webhook_inbox "+
		"WHERE upstream_id = ? ORDER BY received_at, body_sha256"), upstreamID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []InboxEntry
	for rows.Next() {
		var e InboxEntry
		var body string
		var at int64
		var signed sql.NullInt64
		if err := rows.Scan(&e.Hash, &e.UpstreamID, &e.Type, &body, &at, &signed); err != nil {
			return nil, err
		}
		e.Body, e.ReceivedAt, e.SignedAt = []byte(body), time.UnixMilli(at).UTC(), fromMilli(signed)
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *sqlStore) DeleteInbox(ctx context.Context, hash string) error {
	_, err := s.w.ExecContext(ctx, s.d.q("DELETE FROM webhook_inbox WHERE body_sha256 = ?"), hash)
	return err
}

func (s *sqlStore) CleanupInbox(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, s.d.q("DELETE FROM webhook_inbox WHERE received_at < ?"), before.UnixMilli())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
