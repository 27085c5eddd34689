package gateway

// Accessors for the dashboard (package gateway/web). The dashboard acts as
// a signed-in tenant or the admin; every job it shows or submits goes
// through the same code, scoping and validation as the JSON API.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/gateway/storage"
)

// Principal is who a dashboard request acts as: the admin, or a tenant.
type Principal struct {
	Admin  bool
	Tenant *Tenant
}

// Scope is the tenant id the principal may see ("" for the admin: all).
func (p Principal) Scope() string {
	if p.Tenant == nil {
		return ""
	}
	return p.Tenant.ID
}

func (p Principal) caller() caller { return caller{Tenant: p.Tenant, Admin: p.Admin} }

// Store returns the gateway's store.
func (g *Gateway) Store() Store { return g.store }

// SSEPoll returns how often event streams read the database.
func (g *Gateway) SSEPoll() time.Duration { return g.cfg.SSEPoll }

// Authenticate resolves an API key (the admin key or a tenant key) the way
// the API does; ErrNotFound when it is neither.
func (g *Gateway) Authenticate(ctx context.Context, key string) (Principal, error) {
	key = strings.TrimSpace(key)
	if key == "" {
		return Principal{}, ErrNotFound
	}
	return g.PrincipalByKeyHash(ctx, HashKey(key))
}

// PrincipalByKeyHash resolves a stored key hash to the admin or a tenant
// (sessions keep the hash, never the key); ErrNotFound when it is neither,
// for example after the key was rotated.
func (g *Gateway) PrincipalByKeyHash(ctx context.Context, hash string) (Principal, error) {
	admin, err := g.store.IsAdminKey(ctx, hash)
	if err != nil {
		return Principal{}, err
	}
	if admin {
		return Principal{Admin: true}, nil
	}
	t, err := g.store.TenantByKey(ctx, hash)
	if err != nil {
		return Principal{}, err
	}
	return Principal{Tenant: t}, nil
}

// FieldMessage is one field error of a refused submission; Field is the
// API's name ("params.style.prompt").
type FieldMessage struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// SubmitResult is the outcome of SubmitAs: the HTTP status POST /api/jobs
// answered, the job id when accepted, else the error.
type SubmitResult struct {
	Status  int
	JobID   string
	Code    string
	Message string
	Fields  []FieldMessage
}

// SubmitAs submits a job as tenant t exactly as POST /api/jobs does (the
// same validation, budget check and idempotency): body is the API's
// request, {"tool", "params", ...}.
//
// It calls the same functions as the handler, in process (no HTTP).
func (g *Gateway) SubmitAs(ctx context.Context, t *Tenant, body []byte) SubmitResult {
	if int64(len(body)) > g.cfg.MaxBodyBytes {
		return SubmitResult{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
			Message: fmt.Sprintf("request body larger than %d bytes", g.cfg.MaxBodyBytes)}
	}
	req, status, apiErr := decodeSubmit(body)
	if apiErr == nil {
		var j *Job
		var created bool
		j, created, status, apiErr = g.submitJob(ctx, t, req)
		if apiErr == nil {
			status = http.StatusOK
			if created {
				status = http.StatusAccepted
			}
			return SubmitResult{Status: status, JobID: j.ID}
		}
	}
	res := SubmitResult{Status: status, Code: apiErr.Code, Message: apiErr.Message}
	for _, f := range apiErr.Fields {
		res.Fields = append(res.Fields, FieldMessage(f))
	}
	return res
}

// ServeOutputAs serves output n of a job as GET /api/jobs/{id}/outputs/{n}
// does (Range, ETag, the principal's scope).
func (g *Gateway) ServeOutputAs(w http.ResponseWriter, r *http.Request, p Principal, jobID string, n int) {
	r = r.Clone(r.Context())
	r.SetPathValue("id", jobID)
	r.SetPathValue("n", strconv.Itoa(n))
	g.handleOutput(w, r, p.caller())
}

// CheckOutput reports why a stored output cannot be served: nil when it
// can, ErrNotFound when its file is missing from storage.
func (g *Gateway) CheckOutput(ctx context.Context, o Output) error {
	if o.StorageKey == "" {
		return ErrNotFound
	}
	f, _, err := g.storage.Open(ctx, o.StorageKey)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// UploadInput stores an input file for a tenant's job as POST /api/uploads
// does: the bytes go to the gateway's storage, and the returned file_path
// ("api-assets/hourglass/upl_....png") goes in the job's params; the worker
// uploads it to Magic Hour before the job's create.
func (g *Gateway) UploadInput(ctx context.Context, tenantID, ext string, r io.Reader) (string, error) {
	u, _, ae := g.receiveUpload(ctx, nil, tenantID, ext, r)
	if ae != nil {
		return "", errors.New(ae.Message)
	}
	return uploadFilePath(u), nil
}

// dashboardStore is what the dashboard needs beyond Store; the SQL store
// implements it (store_dashboard.go).
type dashboardStore interface {
	dashboardSecret(ctx context.Context) (string, error)
	jobsChangedSince(ctx context.Context, f JobFilter, since time.Time, limit int) ([]*Job, error)
	jobCounts(ctx context.Context, tenantID string) (map[Status]int, error)
	finishedByHour(ctx context.Context, tenantID string, since time.Time) ([]HourBucket, error)
	eventsOfType(ctx context.Context, tenantID, typ string, since time.Time, limit int) ([]Event, error)
}

var errNoDashboardStore = errors.New("gateway: the store does not support the dashboard's queries")

func (g *Gateway) dstore() (dashboardStore, error) {
	if ds, ok := g.store.(dashboardStore); ok {
		return ds, nil
	}
	return nil, errNoDashboardStore
}

// DashboardSecret returns the key that signs dashboard sessions, created
// once per database (in the meta table) so every replica shares it.
func (g *Gateway) DashboardSecret(ctx context.Context) ([]byte, error) {
	ds, err := g.dstore()
	if err != nil {
		return nil, err
	}
	s, err := ds.dashboardSecret(ctx)
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// JobsChangedSince returns the jobs matching f (TenantID, Tool; Status and
// Cursor are ignored) updated at or after since, oldest change first.
func (g *Gateway) JobsChangedSince(ctx context.Context, f JobFilter, since time.Time, limit int) ([]*Job, error) {
	ds, err := g.dstore()
	if err != nil {
		return nil, err
	}
	return ds.jobsChangedSince(ctx, f, since, limit)
}

// JobCounts returns how many jobs are in each status ("" tenant: all).
func (g *Gateway) JobCounts(ctx context.Context, tenantID string) (map[Status]int, error) {
	ds, err := g.dstore()
	if err != nil {
		return nil, err
	}
	return ds.jobCounts(ctx, tenantID)
}

// HourBucket counts the jobs that finished in one hour, by outcome.
type HourBucket struct {
	Hour     time.Time
	Finished int
	Failed   int // status error
	// UpstreamFailed counts the failed jobs whose error is Magic Hour's
	// service or the way to it (UpstreamErrorCodes), not the content
	// (no_source_face, a refused input, ...).
	UpstreamFailed int
}

// UpstreamErrorCodes are the job error codes that mean an upstream or
// transport failure rather than a problem with the job's input.
var UpstreamErrorCodes = []string{"upload_failed", "create_failed", "poll_failed", "store_failed",
	"upstream_not_found", "upstream_unavailable", "no_outputs"}

// FinishedByHour returns the jobs finished since then, per hour, oldest
// first (hours without jobs are absent).
func (g *Gateway) FinishedByHour(ctx context.Context, tenantID string, since time.Time) ([]HourBucket, error) {
	ds, err := g.dstore()
	if err != nil {
		return nil, err
	}
	return ds.finishedByHour(ctx, tenantID, since)
}

// EventsOfType returns the newest events of one type since then (at most
// limit), for the jobs of a tenant ("" : all).
func (g *Gateway) EventsOfType(ctx context.Context, tenantID, typ string, since time.Time, limit int) ([]Event, error) {
	ds, err := g.dstore()
	if err != nil {
		return nil, err
	}
	return ds.eventsOfType(ctx, tenantID, typ, since, limit)
}
