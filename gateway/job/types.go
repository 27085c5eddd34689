// Package job is the gateway's domain: a job, its tenant, outputs,
// timeline events, uploads and callbacks, and the job's state machine.
// Every change of a job's status, the events it adds and its effect on the
// tenant's credits is a method here returning a Change for the store to
// apply atomically; nothing else assigns a status. No I/O.
package job

import (
	"encoding/json"
	"time"
)

// Status is the state of a job.
//
//	pending → creating → submitted → queued → rendering → storing → stored
//	                 ↘ create_outcome_unknown        ↘ error | canceled
//
// and from any state but creating, a client's delete: → deleted. See
// transitions.go for every edge.
type Status string

// Job statuses.
const (
	// StatusPending: accepted, not yet sent upstream.
	StatusPending Status = "pending"
	// StatusCreating: the create intent is recorded and the upstream create
	// may be on the wire. A job found here with an expired lease is never
	// sent again: it moves to StatusCreateOutcomeUnknown.
	StatusCreating Status = "creating"
	// StatusSubmitted, StatusQueued, StatusRendering: the upstream project
	// exists (UpstreamID is set) and is being tracked.
	StatusSubmitted Status = "submitted"
	StatusQueued    Status = "queued"
	StatusRendering Status = "rendering"
	// StatusStoring: the upstream project completed; outputs are being
	// copied to storage.
	StatusStoring Status = "storing"
	// StatusStored: every output is in storage, verified. Terminal.
	StatusStored Status = "stored"
	// StatusError: the upstream job failed, the create was refused, or the
	// outputs could not be stored. Terminal.
	StatusError Status = "error"
	// StatusCanceled: canceled upstream (dashboard) or by the client. Terminal.
	StatusCanceled Status = "canceled"
	// StatusCreateOutcomeUnknown: the create may or may not have reached
	// Magic Hour (the answer was lost or the gateway crashed while it was in
	// flight). The job is not created again; an operator decides. Terminal.
	StatusCreateOutcomeUnknown Status = "create_outcome_unknown"
	// StatusDeleted: a client deleted the job (native or drop-in DELETE):
	// tracking stopped and its stored outputs are deleted. Terminal.
	StatusDeleted Status = "deleted"
)

var allStatuses = []Status{StatusPending, StatusCreating, StatusSubmitted, StatusQueued, StatusRendering,
	StatusStoring, StatusStored, StatusError, StatusCanceled, StatusCreateOutcomeUnknown, StatusDeleted}

// Statuses returns every status, in the order of a job's life.
func Statuses() []Status { return append([]Status(nil), allStatuses...) }

// Terminal reports whether no more work will happen on a job in status s.
func (s Status) Terminal() bool {
	return s == StatusStored || s == StatusError || s == StatusCanceled || s == StatusCreateOutcomeUnknown || s == StatusDeleted
}

// Tracking reports whether the upstream project exists and is not finished.
func (s Status) Tracking() bool {
	return s == StatusSubmitted || s == StatusQueued || s == StatusRendering
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, x := range allStatuses {
		if s == x {
			return true
		}
	}
	return false
}

// Tenant is an app using the gateway.
type Tenant struct {
	ID      string
	Name    string
	KeyHash string // hex sha256 of the tenant's API key
	// Secret signs the callbacks sent to the tenant's callback URLs.
	Secret string
	// CreditBudget caps CreditsUsed; nil means no limit. A job's
	// estimated credits are reserved (added to CreditsUsed) when it is
	// accepted and corrected to the charged amount later.
	CreditBudget *int64
	CreditsUsed  int64
	// MaxInFlight caps the tenant's jobs being created or rendered upstream
	// at once; jobs beyond it stay pending. nil means no limit.
	MaxInFlight *int
	// DeleteUpstreamAfterStore is the default of a job's DeleteUpstream.
	DeleteUpstreamAfterStore bool
	CreatedAt                time.Time
	// PrevKeyUntil is when the key replaced by the last rotation stops
	// working (zero: no previous key). DisabledAt is set while the tenant
	// is disabled: its keys answer 403, its jobs stay.
	PrevKeyUntil time.Time
	DisabledAt   time.Time
}

// Job is one generation request and its whole lifecycle.
type Job struct {
	ID             string
	TenantID       string
	Tool           string
	Kind           string
	Params         json.RawMessage
	Status         Status
	UpstreamID     string
	UpstreamStatus string
	IdempotencyKey string
	Metadata       json.RawMessage
	CallbackURL    string
	Credits        int64
	ErrorCode      string
	ErrorMessage   string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	SubmittedAt    time.Time // upstream id recorded
	ExpectedAt     time.Time // when the upstream result is expected (p50)
	FinishedAt     time.Time
	NextRunAt      time.Time // zero: no work due
	LeaseOwner     string
	LeaseUntil     time.Time
	Attempts       int // failures of the current step
	Polls          int
	Version        int64 // bumped by every state change (optimistic concurrency)
	// DeleteUpstream deletes the Magic Hour project once every output is
	// stored (the integration guide's clean-up step).
	DeleteUpstream bool
	// UpstreamProject is the upstream project (JSON) as seen when it
	// finished, for the drop-in API's project shape.
	UpstreamProject json.RawMessage
	// DeletedAt is set when a client deleted the job (StatusDeleted).
	DeletedAt time.Time

	// saved is the status the job had when read (or last saved): a save
	// that changes it may enqueue a callback.
	saved Status
}

// MarkSaved records that the store holds j as it is now (after a read or
// a save).
func (j *Job) MarkSaved() { j.saved = j.Status }

// SavedStatus is the status the store held when j was read or last saved.
func (j *Job) SavedStatus() Status { return j.saved }

// Output is one file of a finished job.
type Output struct {
	JobID       string
	Index       int
	UpstreamURL string
	ExpiresAt   time.Time
	StorageKey  string
	Size        int64
	SHA256      string
	ContentType string
	StoredAt    time.Time // zero until the copy is safe
}

// Event is one entry of a job's timeline.
type Event struct {
	ID        int64
	JobID     string
	Type      string
	Data      json.RawMessage
	CreatedAt time.Time
}

// Upload is a file a tenant uploaded to the gateway (drop-in upload URL
// or POST /api/uploads). Jobs refer to it by FilePath(); the worker
// uploads it to Magic Hour before the create (once: UpstreamPath).
type Upload struct {
	ID           string
	TenantID     string
	Media        string // image, video, audio
	Ext          string
	TokenHash    string // hex sha256 of the PUT token (drop-in upload URLs)
	StorageKey   string
	Size         int64
	SHA256       string
	UpstreamPath string
	CreatedAt    time.Time
	ExpiresAt    time.Time // the upload URL's expiry
	StoredAt     time.Time // zero until the bytes are stored
}

// Callback is one event to deliver to a job's callback_url.
type Callback struct {
	ID          int64
	JobID       string
	TenantID    string
	Type        string // job.stored, job.error, ...
	URL         string
	Body        []byte
	Status      string // pending, delivered, failed
	Attempts    int
	NextRunAt   time.Time
	LeaseOwner  string
	LeaseUntil  time.Time
	LastCode    int
	LastError   string
	CreatedAt   time.Time
	DeliveredAt time.Time
}

// CallbackAttempt is one try at delivering a Callback.
type CallbackAttempt struct {
	ID         int64
	CallbackID int64
	JobID      string
	Attempt    int
	StatusCode int
	Error      string
	Duration   time.Duration
	CreatedAt  time.Time
}

// Callback statuses.
const (
	CallbackPending   = "pending"
	CallbackDelivered = "delivered"
	CallbackFailed    = "failed"
)
