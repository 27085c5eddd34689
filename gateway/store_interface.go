package gateway

import (
	"context"
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
