package gateway

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
)

// JobFilter selects jobs for listing. Jobs come newest first; Cursor is
// the id of the last job of the previous page.
type JobFilter struct {
	TenantID string // empty: every tenant
	Status   Status
	Tool     string
	Cursor   string
	Limit    int
	// Statuses (any of), metadata values (all of) and the creation-time
	// range (exclusive) narrow the list further (listquery.go).
	Statuses      []Status
	Metadata      map[string]string
	CreatedAfter  time.Time
	CreatedBefore time.Time
}

// JobUpdate is a state change applied atomically: the job row (only if
// its Version is still the one read), its timeline events, and optionally
// its outputs and the tenant's credit usage.
type JobUpdate struct {
	Job     *Job
	Events  []Event
	Outputs []Output // replaces the job's outputs when non-nil
	// CreditsDelta is added to the tenant's credits_used.
	CreditsDelta int64
	// DeliveryHash, when set, records a webhook delivery in the same
	// transaction; a delivery seen before fails the update with ErrDuplicate.
	DeliveryHash string
	// InFlightLimit, when > 0, fails the update with ErrThrottled if the
	// tenant already has that many jobs in flight upstream (creating,
	// submitted, queued, rendering), checked under a lock on the tenant.
	// ThrottleFor is how long the tenant's pending jobs are then skipped.
	InFlightLimit int
	ThrottleFor   time.Duration
	// Callbacks are enqueued for delivery in the same transaction.
	Callbacks []Callback
}

// Store errors.
var (
	// ErrNotFound: no such row (or not visible to the tenant).
	ErrNotFound = errors.New("gateway: not found")
	// ErrConflict: the job changed since it was read.
	ErrConflict = errors.New("gateway: job changed concurrently")
	// ErrDuplicate: the webhook delivery was already processed.
	ErrDuplicate = errors.New("gateway: duplicate webhook delivery")
	// ErrBudget: the tenant's credit budget cannot cover the job.
	ErrBudget = errors.New("gateway: credit budget exceeded")
	// ErrThrottled: the tenant has max_in_flight jobs upstream already.
	ErrThrottled = errors.New("gateway: tenant at its in-flight limit")
)

// Store is the gateway's durable state. Every replica of a gateway shares
// one Store; nothing that matters lives only in a process's memory. The
// SQL implementation serves SQLite and PostgreSQL with the same queries.
type Store interface {
	// Bootstrap records the first admin key and tenant once per database;
	// it reports false (and stores nothing) when already bootstrapped.
	Bootstrap(ctx context.Context, adminKeyHash string, t *Tenant) (bool, error)
	IsAdminKey(ctx context.Context, keyHash string) (bool, error)
	CreateTenant(ctx context.Context, t *Tenant) error
	TenantByKey(ctx context.Context, keyHash string) (*Tenant, error)
	Tenant(ctx context.Context, id string) (*Tenant, error)
	ListTenants(ctx context.Context) ([]*Tenant, error)

	// CreateJob inserts j with its first event and reserves j.Credits (the
	// estimate) on the tenant's credits_used; ErrBudget (nothing stored)
	// when that would exceed the tenant's budget. When the tenant already
	// has a job with j's idempotency key it returns that job and false.
	CreateJob(ctx context.Context, j *Job, ev Event) (*Job, bool, error)
	// Job returns a job; tenantID "" matches any tenant.
	Job(ctx context.Context, tenantID, id string) (*Job, error)
	JobByUpstreamID(ctx context.Context, upstreamID string) (*Job, error)
	ListJobs(ctx context.Context, f JobFilter) ([]*Job, error)
	// UpdateJob applies u if u.Job.Version is current (else ErrConflict)
	// and increments u.Job.Version.
	UpdateJob(ctx context.Context, u JobUpdate) error

	// ClaimJobs leases up to limit due jobs (next_run_at <= now, lease free
	// or expired) to owner until the given time.
	ClaimJobs(ctx context.Context, owner string, now, until time.Time, limit int) ([]*Job, error)
	// ExtendLease moves a held lease's end; false when the lease was lost.
	ExtendLease(ctx context.Context, jobID, owner string, until time.Time) (bool, error)
	ReleaseLease(ctx context.Context, jobID, owner string) error
	// NextDue returns the earliest time some job may become claimable.
	NextDue(ctx context.Context) (time.Time, bool, error)

	Outputs(ctx context.Context, jobID string) ([]Output, error)
	// UpdateOutput saves o and adds evs (the job's timeline) atomically.
	UpdateOutput(ctx context.Context, o Output, evs ...Event) error
	// CommitOutput saves a stored output o of j and adds evs, atomically,
	// only if j is still storing at j.Version (else ErrConflict, nothing
	// saved); it bumps the job's version (j.Version too), so a concurrent
	// change of the job and this commit cannot both succeed.
	CommitOutput(ctx context.Context, j *Job, o Output, evs ...Event) error
	AddEvent(ctx context.Context, ev Event) error
	// Events returns a job's events with id > after, oldest first.
	Events(ctx context.Context, jobID string, after int64, limit int) ([]Event, error)
	// RecordDelivery records a webhook body hash with the job events it
	// caused; ErrDuplicate when the hash was recorded before.
	RecordDelivery(ctx context.Context, bodyHash string, events []Event) error

	// Uploads, callbacks, face detections, limits, retention and metrics
	// (store_interface.go; implemented in store_uploads.go, store_callbacks.go, ...).
	extraStore

	Ping(ctx context.Context) error
	Close() error
}

// sqlStore implements Store on database/sql for SQLite and PostgreSQL.
type sqlStore struct {
	// w takes every write and every transaction; r the reads outside a
	// transaction. PostgreSQL: the same pool. SQLite: one connection for
	// w, read-only connections for r (see openDB).
	w, r  *sqlDB
	d     dialect
	clock clockwork.Clock
}

// StoreOption configures OpenStore.
type StoreOption func(*sqlStore)

// WithStoreClock sets the store's time source for the times it stamps
// itself (delivery records, throttles, bootstrap); default the real clock.
// Give it the gateway's Config.Clock.
func WithStoreClock(c clockwork.Clock) StoreOption {
	return func(s *sqlStore) { s.clock = c }
}

// OpenStore opens (and migrates) the database at dbURL: sqlite://path or
// postgres://...
func OpenStore(ctx context.Context, dbURL string, opts ...StoreOption) (Store, error) {
	w, r, d, err := openDB(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	probe := &sqlStore{clock: clockwork.NewRealClock()}
	for _, o := range opts {
		o(probe)
	}
	if err := migrate(ctx, w, d, probe.clock); err != nil {
		w.Close()
		if r != w {
			r.Close()
		}
		return nil, err
	}
	cache := d.name == "sqlite"
	s := &sqlStore{w: newSQLDB(w, cache), d: d, clock: probe.clock}
	s.r = s.w
	if r != w {
		s.r = newSQLDB(r, cache)
	}
	return s, nil
}

func (s *sqlStore) Close() error {
	err := s.w.Close()
	if s.r != s.w {
		if rerr := s.r.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.w.db.PingContext(ctx); err != nil {
		return err
	}
	return s.r.db.PingContext(ctx)
}

// --- nullable helpers: zero values are stored as NULL ---

func nstr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func ntime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func njson(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func fromMilli(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMilli(n.Int64).UTC()
}

// tx runs fn in a write transaction (on the writer).
func (s *sqlStore) tx(ctx context.Context, fn func(*sqlTx) error) error {
	return s.w.tx(ctx, fn)
}

// --- tenants ---

const tenantCols = "id, name, key_hash, secret, credit_budget, credits_used, created_at, max_in_flight, delete_upstream_after_store, " +
	"prev_key_until, disabled_at"

func scanTenant(row scanner) (*Tenant, error) {
	var t Tenant
	var budget, maxInFlight, prevUntil, disabled sql.NullInt64
	var created, delUp int64
	if err := row.Scan(&t.ID, &t.Name, &t.KeyHash, &t.Secret, &budget, &t.CreditsUsed, &created, &maxInFlight, &delUp, &prevUntil, &disabled); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	if budget.Valid {
		t.CreditBudget = &budget.Int64
	}
	if maxInFlight.Valid {
		n := int(maxInFlight.Int64)
		t.MaxInFlight = &n
	}
	t.DeleteUpstreamAfterStore = delUp != 0
	t.CreatedAt = time.UnixMilli(created).UTC()
	t.PrevKeyUntil, t.DisabledAt = fromMilli(prevUntil), fromMilli(disabled)
	return &t, nil
}

func (s *sqlStore) insertTenant(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, t *Tenant) error {
	var budget, maxInFlight any
	if t.CreditBudget != nil {
		budget = *t.CreditBudget
	}
	if t.MaxInFlight != nil {
		maxInFlight = *t.MaxInFlight
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.clock.Now().UTC()
	}
	_, err := ex.ExecContext(ctx, s.d.q("INSERT INTO tenants ("+tenantCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		t.ID, t.Name, t.KeyHash, t.Secret, budget, t.CreditsUsed, t.CreatedAt.UnixMilli(), maxInFlight, boolInt(t.DeleteUpstreamAfterStore),
		ntime(t.PrevKeyUntil), ntime(t.DisabledAt))
	return err
}

func (s *sqlStore) Bootstrap(ctx context.Context, adminKeyHash string, t *Tenant) (bool, error) {
	first := false
	err := s.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.ExecContext(ctx, s.d.q("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING"),
			"bootstrapped", s.clock.Now().UTC().Format(time.RFC3339))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		first = true
		if _, err := tx.ExecContext(ctx, s.d.q("INSERT INTO admin_keys (key_hash, created_at) VALUES (?, ?)"),
			adminKeyHash, s.clock.Now().UnixMilli()); err != nil {
			return err
		}
		return s.insertTenant(ctx, tx, t)
	})
	return first, err
}

func (s *sqlStore) IsAdminKey(ctx context.Context, keyHash string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, s.d.q("SELECT COUNT(*) FROM admin_keys WHERE key_hash = ? AND (expires_at IS NULL OR expires_at > ?)"),
		keyHash, s.clock.Now().UnixMilli()).Scan(&n)
	return n > 0, err
}

func (s *sqlStore) CreateTenant(ctx context.Context, t *Tenant) error {
	return s.insertTenant(ctx, s.w, t)
}

func (s *sqlStore) TenantByKey(ctx context.Context, keyHash string) (*Tenant, error) {
	// The previous key works until prev_key_until (rotation overlap).
	return scanTenant(s.r.QueryRowContext(ctx, s.d.q("SELECT "+tenantCols+" FROM tenants WHERE key_hash = ? OR (prev_key_hash = ? AND prev_key_until > ?)"),
		keyHash, keyHash, s.clock.Now().UnixMilli()))
}

func (s *sqlStore) Tenant(ctx context.Context, id string) (*Tenant, error) {
	return scanTenant(s.r.QueryRowContext(ctx, s.d.q("SELECT "+tenantCols+" FROM tenants WHERE id = ?"), id))
}

func (s *sqlStore) ListTenants(ctx context.Context) ([]*Tenant, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+tenantCols+" FROM tenants ORDER BY created_at, id")
	return collect(rows, err, scanTenant)
}

// --- jobs ---

const jobCols = "id, tenant_id, tool, kind, params, status, upstream_id, upstream_status, idempotency_key, metadata, " +
	"callback_url, credits, error_code, error_message, created_at, updated_at, submitted_at, expected_at, finished_at, " +
	"next_run_at, lease_owner, lease_until, attempts, polls, version, delete_upstream, upstream_project, deleted_at"

func scanJob(row scanner) (*Job, error) {
	var j Job
	var params string
	var upID, upStatus, idem, meta, cb, ecode, emsg, owner sql.NullString
	var created, updated int64
	var submitted, expected, finished, next, until, deleted sql.NullInt64
	var status string
	var delUp int64
	var upProject sql.NullString
	err := row.Scan(&j.ID, &j.TenantID, &j.Tool, &j.Kind, &params, &status, &upID, &upStatus, &idem, &meta,
		&cb, &j.Credits, &ecode, &emsg, &created, &updated, &submitted, &expected, &finished,
		&next, &owner, &until, &j.Attempts, &j.Polls, &j.Version, &delUp, &upProject, &deleted)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	j.Params = json.RawMessage(params)
	j.Status = Status(status)
	j.MarkSaved()
	j.DeleteUpstream = delUp != 0
	if upProject.Valid {
		j.UpstreamProject = json.RawMessage(upProject.String)
	}
	j.DeletedAt = fromMilli(deleted)
	j.UpstreamID, j.UpstreamStatus, j.IdempotencyKey = upID.String, upStatus.String, idem.String
	if meta.Valid {
		j.Metadata = json.RawMessage(meta.String)
	}
	j.CallbackURL, j.ErrorCode, j.ErrorMessage, j.LeaseOwner = cb.String, ecode.String, emsg.String, owner.String
	j.CreatedAt, j.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	j.SubmittedAt, j.ExpectedAt, j.FinishedAt = fromMilli(submitted), fromMilli(expected), fromMilli(finished)
	j.NextRunAt, j.LeaseUntil = fromMilli(next), fromMilli(until)
	return &j, nil
}

func (s *sqlStore) CreateJob(ctx context.Context, j *Job, ev Event) (*Job, bool, error) {
	created := false
	err := s.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.ExecContext(ctx, s.d.q("INSERT INTO jobs ("+jobCols+") VALUES "+
			"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "+
			"ON CONFLICT (tenant_id, idempotency_key) DO NOTHING"),
			j.ID, j.TenantID, j.Tool, j.Kind, string(j.Params), string(j.Status), nstr(j.UpstreamID), nstr(j.UpstreamStatus),
			nstr(j.IdempotencyKey), njson(j.Metadata), nstr(j.CallbackURL), j.Credits, nstr(j.ErrorCode), nstr(j.ErrorMessage),
			j.CreatedAt.UnixMilli(), j.UpdatedAt.UnixMilli(), ntime(j.SubmittedAt), ntime(j.ExpectedAt), ntime(j.FinishedAt),
			ntime(j.NextRunAt), nstr(j.LeaseOwner), ntime(j.LeaseUntil), j.Attempts, j.Polls, j.Version,
			boolInt(j.DeleteUpstream), njson(j.UpstreamProject), ntime(j.DeletedAt))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		if j.Credits != 0 {
			res, err := tx.ExecContext(ctx, s.d.q("UPDATE tenants SET credits_used = credits_used + ? "+
				"WHERE id = ? AND (credit_budget IS NULL OR credits_used + ? <= credit_budget)"), j.Credits, j.TenantID, j.Credits)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return ErrBudget
			}
		}
		created = true
		ev.JobID = j.ID
		return s.addEvent(ctx, tx, ev)
	})
	if err != nil {
		return nil, false, err
	}
	if created {
		j.MarkSaved()
		return j, true, nil
	}
	existing, err := scanJob(s.r.QueryRowContext(ctx, s.d.q("SELECT "+jobCols+" FROM jobs WHERE tenant_id = ? AND idempotency_key = ?"),
		j.TenantID, j.IdempotencyKey))
	if err != nil {
		return nil, false, fmt.Errorf("gateway: read job by idempotency key: %w", err)
	}
	return existing, false, nil
}

func (s *sqlStore) Job(ctx context.Context, tenantID, id string) (*Job, error) {
	if tenantID == "" {
		return scanJob(s.r.QueryRowContext(ctx, s.d.q("SELECT "+jobCols+" FROM jobs WHERE id = ?"), id))
	}
	return scanJob(s.r.QueryRowContext(ctx, s.d.q("SELECT "+jobCols+" FROM jobs WHERE id = ? AND tenant_id = ?"), id, tenantID))
}

func (s *sqlStore) JobByUpstreamID(ctx context.Context, upstreamID string) (*Job, error) {
	return scanJob(s.r.QueryRowContext(ctx, s.d.q("SELECT "+jobCols+" FROM jobs WHERE upstream_id = ?"), upstreamID))
}

func (s *sqlStore) ListJobs(ctx context.Context, f JobFilter) ([]*Job, error) {
	var where []string
	var args []any
	if f.TenantID != "" {
		where, args = append(where, "tenant_id = ?"), append(args, f.TenantID)
	}
	if w, a := s.d.listConditions(f); len(w) > 0 {
		where, args = append(where, w...), append(args, a...)
	}
	if f.Tool != "" {
		where, args = append(where, "tool = ?"), append(args, f.Tool)
	}
	if f.Cursor != "" {
		where, args = append(where, "id < ?"), append(args, f.Cursor)
	}
	q := "SELECT " + jobCols + " FROM jobs"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, s.d.q(q), args...)
	return collect(rows, err, scanJob)
}

func (s *sqlStore) UpdateJob(ctx context.Context, u JobUpdate) error {
	j := u.Job
	err := s.tx(ctx, func(tx *sqlTx) error {
		if u.InFlightLimit > 0 {
			if err := s.checkInFlight(ctx, tx, j, u.InFlightLimit, u.ThrottleFor); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, s.d.q("UPDATE jobs SET status = ?, upstream_id = ?, upstream_status = ?, credits = ?, "+
			"error_code = ?, error_message = ?, updated_at = ?, submitted_at = ?, expected_at = ?, finished_at = ?, "+
			"next_run_at = ?, lease_owner = ?, lease_until = ?, attempts = ?, polls = ?, version = version + 1, "+
			"delete_upstream = ?, upstream_project = ?, deleted_at = ? "+
			"WHERE id = ? AND version = ?"),
			string(j.Status), nstr(j.UpstreamID), nstr(j.UpstreamStatus), j.Credits,
			nstr(j.ErrorCode), nstr(j.ErrorMessage), j.UpdatedAt.UnixMilli(), ntime(j.SubmittedAt), ntime(j.ExpectedAt), ntime(j.FinishedAt),
			ntime(j.NextRunAt), nstr(j.LeaseOwner), ntime(j.LeaseUntil), j.Attempts, j.Polls,
			boolInt(j.DeleteUpstream), njson(j.UpstreamProject), ntime(j.DeletedAt),
			j.ID, j.Version)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrConflict
		}
		if u.DeliveryHash != "" {
			if err := s.recordDelivery(ctx, tx, u.DeliveryHash); err != nil {
				return err
			}
		}
		if u.Outputs != nil {
			if _, err := tx.ExecContext(ctx, s.d.q("DELETE FROM outputs WHERE job_id = ?"), j.ID); err != nil {
				return err
			}
			for _, o := range u.Outputs {
				o.JobID = j.ID
				if err := s.insertOutput(ctx, tx, o); err != nil {
					return err
				}
			}
		}
		if u.CreditsDelta != 0 {
			if _, err := tx.ExecContext(ctx, s.d.q("UPDATE tenants SET credits_used = credits_used + ? WHERE id = ?"),
				u.CreditsDelta, j.TenantID); err != nil {
				return err
			}
		}
		for _, ev := range u.Events {
			ev.JobID = j.ID
			if err := s.addEvent(ctx, tx, ev); err != nil {
				return err
			}
		}
		for _, cb := range u.Callbacks {
			if err := s.insertCallback(ctx, tx, cb); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		j.Version++
		j.MarkSaved()
	}
	if errors.Is(err, ErrThrottled) && u.ThrottleFor > 0 {
		// Remember it outside the failed transaction: the claim skips the
		// tenant's pending jobs for a while.
		_, _ = s.w.ExecContext(ctx, s.d.q("UPDATE tenants SET throttled_until = ? WHERE id = ?"),
			s.clock.Now().Add(u.ThrottleFor).UnixMilli(), j.TenantID)
	}
	return err
}

func (s *sqlStore) ClaimJobs(ctx context.Context, owner string, now, until time.Time, limit int) ([]*Job, error) {
	q := s.d.fairClaimSQL() // round-robin across tenants (fairclaim.go)
	n := now.UnixMilli()
	rows, err := s.w.QueryContext(ctx, s.d.q(q), owner, until.UnixMilli(), n, n, n, limit, limit, n, n)
	return collect(rows, err, scanJob)
}

func (s *sqlStore) ExtendLease(ctx context.Context, jobID, owner string, until time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, s.d.q("UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ?"),
		until.UnixMilli(), jobID, owner)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (s *sqlStore) ReleaseLease(ctx context.Context, jobID, owner string) error {
	_, err := s.w.ExecContext(ctx, s.d.q("UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?"),
		jobID, owner)
	return err
}

func (s *sqlStore) NextDue(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.r.QueryRowContext(ctx, "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_run_at "+
		"THEN lease_until ELSE next_run_at END) FROM jobs WHERE next_run_at IS NOT NULL").Scan(&next)
	if err != nil || !next.Valid {
		return time.Time{}, false, err
	}
	return time.UnixMilli(next.Int64), true, nil
}

// --- outputs ---

const outputCols = "job_id, idx, upstream_url, expires_at, storage_key, size, sha256, content_type, stored_at"

func (s *sqlStore) insertOutput(ctx context.Context, tx *sqlTx, o Output) error {
	var size any
	if !o.StoredAt.IsZero() {
		size = o.Size
	}
	_, err := tx.ExecContext(ctx, s.d.q("INSERT INTO outputs ("+outputCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		o.JobID, o.Index, o.UpstreamURL, ntime(o.ExpiresAt), nstr(o.StorageKey), size, nstr(o.SHA256), nstr(o.ContentType), ntime(o.StoredAt))
	return err
}

func (s *sqlStore) Outputs(ctx context.Context, jobID string) ([]Output, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q("SELECT "+outputCols+" FROM outputs WHERE job_id = ? ORDER BY idx"), jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Output
	for rows.Next() {
		var o Output
		var exp, size, stored sql.NullInt64
		var key, sum, ctype sql.NullString
		if err := rows.Scan(&o.JobID, &o.Index, &o.UpstreamURL, &exp, &key, &size, &sum, &ctype, &stored); err != nil {
			return nil, err
		}
		o.ExpiresAt, o.StoredAt = fromMilli(exp), fromMilli(stored)
		o.StorageKey, o.Size, o.SHA256, o.ContentType = key.String, size.Int64, sum.String, ctype.String
		out = append(out, o)
	}
	return out, rows.Err()
}

func (s *sqlStore) UpdateOutput(ctx context.Context, o Output, evs ...Event) error {
	return s.tx(ctx, func(tx *sqlTx) error { return s.updateOutput(ctx, tx, o, evs) })
}

func (s *sqlStore) CommitOutput(ctx context.Context, j *Job, o Output, evs ...Event) error {
	err := s.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.ExecContext(ctx, s.d.q("UPDATE jobs SET version = version + 1 WHERE id = ? AND version = ? AND status = ?"),
			j.ID, j.Version, string(StatusStoring))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrConflict
		}
		return s.updateOutput(ctx, tx, o, evs)
	})
	if err == nil {
		j.Version++
	}
	return err
}

func (s *sqlStore) updateOutput(ctx context.Context, tx *sqlTx, o Output, evs []Event) error {
	var size any
	if !o.StoredAt.IsZero() {
		size = o.Size
	}
	res, err := tx.ExecContext(ctx, s.d.q("UPDATE outputs SET upstream_url = ?, expires_at = ?, storage_key = ?, size = ?, "+
		"sha256 = ?, content_type = ?, stored_at = ? WHERE job_id = ? AND idx = ?"),
		o.UpstreamURL, ntime(o.ExpiresAt), nstr(o.StorageKey), size, nstr(o.SHA256), nstr(o.ContentType), ntime(o.StoredAt), o.JobID, o.Index)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	for _, ev := range evs {
		if ev.JobID == "" {
			ev.JobID = o.JobID
		}
		if err := s.addEvent(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}

// --- events ---

func (s *sqlStore) addEvent(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, ev Event) error {
	if ev.CreatedAt.IsZero() {
		ev.CreatedAt = s.clock.Now()
	}
	_, err := ex.ExecContext(ctx, s.d.q("INSERT INTO events (job_id, type, data, created_at) VALUES (?, ?, ?, ?)"),
		ev.JobID, ev.Type, njson(ev.Data), ev.CreatedAt.UnixMilli())
	return err
}

func (s *sqlStore) AddEvent(ctx context.Context, ev Event) error { return s.addEvent(ctx, s.w, ev) }

// scanEvent reads one row of "id, job_id, type, data, created_at".
func scanEvent(rows scanner) (Event, error) {
	var ev Event
	var data sql.NullString
	var created int64
	if err := rows.Scan(&ev.ID, &ev.JobID, &ev.Type, &data, &created); err != nil {
		return ev, err
	}
	if data.Valid {
		ev.Data = json.RawMessage(data.String)
	}
	ev.CreatedAt = time.UnixMilli(created).UTC()
	return ev, nil
}

func (s *sqlStore) Events(ctx context.Context, jobID string, after int64, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.r.QueryContext(ctx, s.d.q("SELECT id, job_id, type, data, created_at FROM events WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?"),
		jobID, after, limit)
	return collect(rows, err, scanEvent)
}

func (s *sqlStore) recordDelivery(ctx context.Context, tx *sqlTx, bodyHash string) error {
	res, err := tx.ExecContext(ctx, s.d.q("INSERT INTO webhook_deliveries (body_sha256, received_at) VALUES (?, ?) ON CONFLICT (body_sha256) DO NOTHING"),
		bodyHash, s.clock.Now().UnixMilli())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrDuplicate
	}
	return nil
}

func (s *sqlStore) RecordDelivery(ctx context.Context, bodyHash string, events []Event) error {
	return s.tx(ctx, func(tx *sqlTx) error {
		if err := s.recordDelivery(ctx, tx, bodyHash); err != nil {
			return err
		}
		for _, ev := range events {
			if err := s.addEvent(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
}
