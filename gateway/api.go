package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Handler returns the gateway's HTTP API:
//
//	GET    /healthz, /readyz
//	POST   /hooks/magichour                  Magic Hour webhooks (signed)
//	POST   /api/jobs                         submit (tenant key)
//	GET    /api/jobs                         list: ?status=a,b&tool=&limit=&cursor=&metadata.k=v&created_after=&created_before=
//	GET    /api/jobs/{id}                    one job with its outputs
//	DELETE /api/jobs/{id}                    stop tracking, delete the local copy (?upstream=true: on Magic Hour too)
//	GET    /api/jobs/{id}/outputs/{n}        a stored output (Range supported)
//	GET    /api/jobs/{id}/events             the timeline as Server-Sent Events
//	POST   /api/admin/tenants                create a tenant (admin key)
//	GET    /api/admin/tenants                list tenants (admin key)
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", g.handleReady)
	mux.HandleFunc("POST /hooks/magichour", g.handleWebhook)
	mux.HandleFunc("POST /api/jobs", g.auth(false, g.handleSubmit))
	mux.HandleFunc("GET /api/jobs", g.auth(false, g.handleList))
	mux.HandleFunc("GET /api/jobs/{id}", g.auth(false, g.handleGet))
	mux.HandleFunc("DELETE /api/jobs/{id}", g.auth(false, g.handleDelete))
	mux.HandleFunc("GET /api/jobs/{id}/outputs/{n}", g.auth(false, g.handleOutput))
	mux.HandleFunc("GET /api/jobs/{id}/events", g.auth(false, g.handleEvents))
	mux.HandleFunc("GET /api/jobs/{id}/deliveries", g.auth(false, g.handleDeliveries))
	mux.HandleFunc("POST /api/uploads", g.auth(false, g.handleAPIUpload))
	mux.HandleFunc("GET /api/account", g.auth(false, g.handleAccount))
	mux.HandleFunc("POST /api/estimate", g.auth(false, g.handleEstimate))
	mux.HandleFunc("GET /api/listen", g.auth(false, g.handleListen))
	mux.HandleFunc("POST /api/admin/tenants", g.auth(true, g.handleCreateTenant))
	mux.HandleFunc("GET /api/admin/tenants", g.auth(true, g.handleListTenants))
	mux.HandleFunc("GET /api/admin/replicas", g.auth(true, g.handleReplicas))
	mux.HandleFunc("PATCH /api/admin/tenants/{id}", g.auth(true, g.handleUpdateTenant))
	g.revocationRoutes(mux)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such route", nil)
	})
	if !g.cfg.SeparateMetrics {
		mux.Handle("GET /metrics", g.guardMetrics(g.metrics.handler()))
	}
	g.dropInRoutes(mux)
	g.batchRoutes(mux) // batches.go
	return g.logRequests(g.GuardRequests(mux))
}

// statusRecorder remembers a response's status and error code so that
// every refused request is logged exactly once, by logRequests.
type statusRecorder struct {
	http.ResponseWriter
	status    int
	code, msg string
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logRequests logs each refused request once (4xx at info, 5xx at error)
// with its error code, and counts them for /metrics.
func (g *Gateway) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status < 400 {
			return
		}
		code := rec.code
		if code == "" {
			code = strconv.Itoa(rec.status)
		}
		g.metrics.badRequests.WithLabelValues(code).Inc()
		lvl := slog.LevelInfo
		if rec.status >= 500 {
			lvl = slog.LevelError
		}
		g.log.Log(r.Context(), lvl, "gateway: request refused", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "code", code, "message", rec.msg, "remote", r.RemoteAddr)
	})
}

func (g *Gateway) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if msg := g.notReady(ctx); msg != "" {
		writeError(w, http.StatusServiceUnavailable, "not_ready", msg, nil)
		return
	}
	if err := g.checkStorage(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "not_ready", err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// --- auth ---

// caller is who made a request: a tenant, or the admin (Tenant nil).
type caller struct {
	Tenant *Tenant
	Admin  bool
}

// scope is the tenant id a caller may see ("" for the admin: all).
func (c caller) scope() string {
	if c.Tenant == nil {
		return ""
	}
	return c.Tenant.ID
}

type handlerFunc func(http.ResponseWriter, *http.Request, caller)

// auth resolves the Bearer key to a tenant or the admin. Admin routes take
// only the admin key; tenant routes take either (the admin sees every
// tenant's jobs but cannot submit).
func (g *Gateway) auth(adminOnly bool, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing API key: send Authorization: Bearer <key>", nil)
			return
		}
		hash := HashKey(key)
		isAdmin, err := g.store.IsAdminKey(r.Context(), hash)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
			return
		}
		if isAdmin {
			h(w, r, caller{Admin: true})
			return
		}
		if adminOnly {
			writeError(w, http.StatusUnauthorized, "unauthorized", "this route needs the admin key", nil)
			return
		}
		t, err := g.store.TenantByKey(r.Context(), hash)
		if errors.Is(err, ErrNotFound) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "invalid API key", nil)
			return
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
			return
		}
		if !t.DisabledAt.IsZero() {
			writeError(w, http.StatusForbidden, "tenant_disabled", "this tenant is disabled; its jobs are kept (the admin can enable it again)", nil)
			return
		}
		h(w, r, caller{Tenant: t})
	}
}

// --- JSON shapes ---

type apiError struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Fields  []fieldError `json:"fields,omitempty"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// Compact: indenting re-formats stored params and metadata on every
	// read, which costs size times depth (issue 11).
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"message", "error": {code, message, fields}}: the
// top-level message matches Magic Hour's own error shape.
func writeError(w http.ResponseWriter, status int, code, msg string, fields []fieldError) {
	if rec, ok := w.(*statusRecorder); ok {
		rec.code, rec.msg = code, msg
	}
	writeJSON(w, status, map[string]any{"message": msg, "error": apiError{Code: code, Message: msg, Fields: fields}})
}

type jobJSON struct {
	ID             string          `json:"id"`
	Tool           string          `json:"tool"`
	Kind           string          `json:"kind"`
	Status         Status          `json:"status"`
	UpstreamID     string          `json:"upstream_id,omitempty"`
	UpstreamStatus string          `json:"upstream_status,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Params         json.RawMessage `json:"params"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
	CallbackURL    string          `json:"callback_url,omitempty"`
	DeleteUpstream bool            `json:"delete_upstream_after_store,omitempty"`
	Credits        int64           `json:"credits"`
	Error          *apiError       `json:"error,omitempty"`
	Outputs        []outputJSON    `json:"outputs,omitempty"`
	Polls          int             `json:"polls"`
	Attempts       int             `json:"attempts"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	SubmittedAt    *time.Time      `json:"submitted_at,omitempty"`
	ExpectedAt     *time.Time      `json:"expected_at,omitempty"`
	FinishedAt     *time.Time      `json:"finished_at,omitempty"`
	Callbacks      []callbackJSON  `json:"callbacks,omitempty"`
	BatchID        string          `json:"batch_id,omitempty"`
	BatchLine      int             `json:"batch_line,omitempty"`
}

type outputJSON struct {
	Index       int        `json:"index"`
	URL         string     `json:"url,omitempty"`
	Stored      bool       `json:"stored"`
	Size        int64      `json:"size,omitempty"`
	SHA256      string     `json:"sha256,omitempty"`
	ContentType string     `json:"content_type,omitempty"`
	StoredAt    *time.Time `json:"stored_at,omitempty"`
}

func tptr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// toJSON renders a job; base prefixes output URLs ("" leaves them
// relative to the gateway).
func toJSON(base string, j *Job, outs []Output) jobJSON {
	out := jobJSON{ID: j.ID, Tool: j.Tool, Kind: j.Kind, Status: j.Status, UpstreamID: j.UpstreamID, UpstreamStatus: j.UpstreamStatus,
		IdempotencyKey: j.IdempotencyKey, Params: j.Params, Metadata: j.Metadata, CallbackURL: j.CallbackURL, Credits: j.Credits,
		DeleteUpstream: j.DeleteUpstream, Polls: j.Polls, Attempts: j.Attempts, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
		SubmittedAt: tptr(j.SubmittedAt), ExpectedAt: tptr(j.ExpectedAt), FinishedAt: tptr(j.FinishedAt)}
	if j.ErrorCode != "" || j.ErrorMessage != "" {
		out.Error = &apiError{Code: j.ErrorCode, Message: j.ErrorMessage}
	}
	for _, o := range outs {
		oj := outputJSON{Index: o.Index, Stored: !o.StoredAt.IsZero() && o.StorageKey != "", StoredAt: tptr(o.StoredAt)}
		if oj.Stored {
			oj.URL = fmt.Sprintf("%s/api/jobs/%s/outputs/%d", base, j.ID, o.Index)
			oj.Size, oj.SHA256, oj.ContentType = o.Size, o.SHA256, o.ContentType
		}
		out.Outputs = append(out.Outputs, oj)
	}
	return out
}

// --- jobs ---

type submitRequest struct {
	Tool           string          `json:"tool"`
	Params         json.RawMessage `json:"params"`
	IdempotencyKey string          `json:"idempotency_key"`
	Metadata       json.RawMessage `json:"metadata"`
	CallbackURL    string          `json:"callback_url"`
	// DeleteUpstream deletes the Magic Hour project once the outputs are
	// stored; default: the tenant's delete_upstream_after_store.
	DeleteUpstream *bool `json:"delete_upstream_after_store"`
	// Validate false skips the checks against the catalog (Magic Hour has
	// the last word: a value a newer spec allows). The hardening checks
	// (sizes, depth, numbers, uploads, callback URL, quota, budgets) still apply.
	Validate *bool `json:"validate"`

	warnings []catalog.Warning // what validation passed with a warning, recorded as job events
}

func (g *Gateway) handleSubmit(w http.ResponseWriter, r *http.Request, c caller) {
	if c.Tenant == nil {
		writeError(w, http.StatusForbidden, "forbidden", "jobs are submitted with a tenant key, not the admin key", nil)
		return
	}
	body, ok := readLimited(w, r, g.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	req, status, apiErr := decodeSubmit(body)
	if apiErr != nil {
		writeError(w, status, apiErr.Code, apiErr.Message, apiErr.Fields)
		return
	}
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = r.Header.Get("Idempotency-Key")
	}
	job, created, status, apiErr := g.submitJob(r.Context(), c.Tenant, req)
	if apiErr != nil {
		writeError(w, status, apiErr.Code, apiErr.Message, apiErr.Fields)
		return
	}
	if !created {
		outs, _ := g.store.Outputs(r.Context(), job.ID)
		writeJSON(w, http.StatusOK, toJSON(baseURL(r), job, outs))
		return
	}
	w.Header().Set("Location", "/api/jobs/"+job.ID)
	writeJSON(w, http.StatusAccepted, toJSON(baseURL(r), job, nil))
}

// decodeSubmit reads POST /api/jobs's body strictly (unknown fields and
// trailing data are refused).
func decodeSubmit(body []byte) (submitRequest, int, *apiError) {
	var req submitRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, http.StatusBadRequest, &apiError{Code: "malformed_json", Message: "malformed JSON: " + err.Error()}
	}
	if dec.More() {
		return req, http.StatusBadRequest, &apiError{Code: "malformed_json", Message: "malformed JSON: trailing data after the object"}
	}
	return req, 0, nil
}

// submitJob validates a submission of tenant t against the catalog and
// records it (accept): the job and whether it is new (false: an
// idempotent repeat). The native API and the dashboard submit through it.
func (g *Gateway) submitJob(ctx context.Context, t *Tenant, req submitRequest) (*Job, bool, int, *apiError) {
	job, status, apiErr := g.validateSubmit(&req)
	if apiErr != nil {
		return nil, false, status, apiErr
	}
	job, created, status, apiErr := g.accept(ctx, t, job, req.DeleteUpstream)
	if apiErr == nil && created {
		g.recordWarnings(ctx, job.ID, req.warnings)
	}
	return job, created, status, apiErr
}

// recordWarnings keeps what a submission passed with (unknown fields sent
// on as they are, URLs without an extension) as validation_warning events
// of the job: never dropped.
func (g *Gateway) recordWarnings(ctx context.Context, jobID string, warns []catalog.Warning) {
	for _, w := range warns {
		if err := g.store.AddEvent(ctx, g.event2(jobID, "validation_warning", map[string]any{"field": "params." + w.Field, "warning": w.Message})); err != nil {
			g.log.Warn("record a validation warning", "job", jobID, "field", w.Field, "warning", w.Message, "err", err)
		}
	}
}

// accept checks a validated job against the tenant (callback URL, uploads,
// budget) and records it; an idempotent repeat returns the first job and
// false. Shared by the native and the drop-in API.
func (g *Gateway) accept(ctx context.Context, t *Tenant, job *Job, deleteUpstream *bool) (*Job, bool, int, *apiError) {
	bad := func(code, msg string, fields ...fieldError) (*Job, bool, int, *apiError) {
		return nil, false, http.StatusBadRequest, &apiError{Code: code, Message: msg, Fields: fields}
	}
	if job.CallbackURL != "" {
		if err := checkPublicURL(ctx, job.CallbackURL, g.cfg.AllowPrivateCallbacks); err != nil {
			msg := callbackRefusal(err)
			return bad("invalid_callback_url", "callback_url "+msg, fieldError{"callback_url", msg})
		}
	}
	if fields := g.checkUploads(ctx, t.ID, g.lookup(job.Tool), job.Params); len(fields) > 0 {
		return bad("invalid_params", "invalid params: "+fields[0].Field+": "+fields[0].Message, fields...)
	}
	if code, ae := g.checkSubmitQuota(ctx, t.ID); ae != nil {
		return nil, false, code, ae
	}
	job.DeleteUpstream = t.DeleteUpstreamAfterStore
	if deleteUpstream != nil {
		job.DeleteUpstream = *deleteUpstream
	}
	job.Credits = g.estimateCredits(job.Tool, job.Params)
	budgetErr := func() (*Job, bool, int, *apiError) {
		msg := fmt.Sprintf("the job's estimated %d credits exceed the tenant's remaining credit budget (%d of %d used); nothing was sent upstream",
			job.Credits, t.CreditsUsed, *t.CreditBudget)
		return nil, false, http.StatusPaymentRequired, &apiError{Code: "budget_exceeded", Message: msg}
	}
	now := g.now()
	accepted := job.Accept(newJobID(now), t.ID, now)
	got, created, err := g.store.CreateJob(ctx, job, accepted)
	if errors.Is(err, ErrBudget) {
		if fresh, ferr := g.store.Tenant(ctx, t.ID); ferr == nil && fresh.CreditBudget != nil {
			t = fresh
		}
		if t.CreditBudget == nil {
			zero := int64(0)
			t.CreditBudget = &zero
		}
		return budgetErr()
	}
	if err != nil {
		g.log.Error("gateway: create job", "err", err)
		return nil, false, http.StatusInternalServerError, &apiError{Code: "internal", Message: "could not record the job"}
	}
	if !created {
		if got.Tool != job.Tool || !bytes.Equal(got.Params, job.Params) {
			return nil, false, http.StatusConflict, &apiError{Code: "idempotency_conflict",
				Message: "idempotency_key was already used for a different request (job " + got.ID + ")"}
		}
		return got, false, 0, nil
	}
	g.nudge()
	g.log.Info("gateway: job accepted", "job", job.ID, "tenant", job.TenantID, "tool", job.Tool, "estimated_credits", job.Credits)
	return job, true, 0, nil
}

// validateSubmit checks a submission against the catalog before anything
// is stored or sent.
func (g *Gateway) validateSubmit(req *submitRequest) (*Job, int, *apiError) {
	bad := func(code, msg string, fields ...fieldError) (*Job, int, *apiError) {
		return nil, http.StatusBadRequest, &apiError{Code: code, Message: msg, Fields: fields}
	}
	if req.Tool == "" {
		return bad("missing_tool", "tool is required", fieldError{"tool", "is required"})
	}
	op := g.lookup(req.Tool)
	if op == nil || !op.IsTool() {
		return bad("unknown_tool", fmt.Sprintf("unknown tool %q", req.Tool), fieldError{"tool", "unknown tool"})
	}
	tool := op.Name
	params := bytes.TrimSpace(req.Params)
	if len(params) == 0 || string(params) == "null" {
		params = []byte("{}")
	}
	if params[0] != '{' {
		return bad("invalid_params", "params must be a JSON object", fieldError{"params", "must be an object"})
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, params); err != nil {
		return bad("invalid_params", "params: "+err.Error())
	}
	params = compact.Bytes()
	if code, fe := checkJSONShape("params", params, MaxParamsBytes); fe != nil {
		return bad(code, "params "+fe.Message, *fe)
	}
	if fe := checkNumbers(params); fe != nil {
		return bad("invalid_params", "invalid params: "+fe.Field+": "+fe.Message, *fe)
	}
	var err error
	if req.Validate == nil || *req.Validate {
		req.warnings, err = op.CheckJSON(params)
	}
	if err != nil {
		var ve *catalog.ValidationError
		if !errors.As(err, &ve) {
			return bad("invalid_params", "params: "+err.Error(), fieldError{"params", err.Error()})
		}
		var fields []fieldError
		var names []string
		for _, f := range ve.Fields {
			name := "params"
			if f.Field != "" {
				name += "." + f.Field
			}
			fields = append(fields, fieldError{name, f.Message})
			names = append(names, name+": "+f.Message)
		}
		msg := "invalid params for " + tool + ": " + strings.Join(names, "; ")
		if hint := ve.Hint(); hint != "" {
			msg += " (" + hint + ")"
		}
		return bad("invalid_params", msg, fields...)
	}
	meta := bytes.TrimSpace(req.Metadata)
	if string(meta) == "null" {
		meta = nil
	}
	if len(meta) > 0 && meta[0] != '{' {
		return bad("invalid_metadata", "metadata must be a JSON object", fieldError{"metadata", "must be an object"})
	}
	if len(req.IdempotencyKey) > 255 {
		return bad("invalid_idempotency_key", "idempotency_key is longer than 255 characters", fieldError{"idempotency_key", "longer than 255 characters"})
	}
	if req.CallbackURL != "" && len(req.CallbackURL) > 2048 {
		return bad("invalid_callback_url", "callback_url is longer than 2048 characters", fieldError{"callback_url", "too long"})
	}
	var metaCompact json.RawMessage
	if len(meta) > 0 {
		var b bytes.Buffer
		if err := json.Compact(&b, meta); err != nil {
			return bad("invalid_metadata", "metadata: "+err.Error())
		}
		metaCompact = b.Bytes()
		if code, fe := checkJSONShape("metadata", metaCompact, MaxMetadataBytes); fe != nil {
			return bad(code, "metadata "+fe.Message, *fe)
		}
	}
	for _, f := range []struct{ name, v string }{{"idempotency_key", req.IdempotencyKey}, {"callback_url", req.CallbackURL}} {
		if !validText(f.v) {
			return bad("invalid_"+f.name, f.name+" must be valid UTF-8 without NUL characters", fieldError{f.name, "must be valid UTF-8 without NUL characters"})
		}
	}
	return &Job{Tool: tool, Kind: string(op.Kind), Params: params, IdempotencyKey: req.IdempotencyKey,
		Metadata: metaCompact, CallbackURL: req.CallbackURL}, 0, nil
}

func (g *Gateway) loadJob(w http.ResponseWriter, r *http.Request, c caller) *Job {
	j, err := g.store.Job(r.Context(), c.scope(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such job", nil)
		return nil
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return nil
	}
	return j
}

func (g *Gateway) handleGet(w http.ResponseWriter, r *http.Request, c caller) {
	j := g.loadJob(w, r, c)
	if j == nil {
		return
	}
	outs, err := g.store.Outputs(r.Context(), j.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	out := toJSON(baseURL(r), j, outs)
	out.BatchID, out.BatchLine, _ = g.JobBatch(r.Context(), j.ID)
	if j.CallbackURL != "" {
		cbs, err := g.store.Callbacks(r.Context(), j.ID)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
			return
		}
		for _, cb := range cbs {
			out.Callbacks = append(out.Callbacks, toCallbackJSON(cb, nil))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type callbackJSON struct {
	ID          int64         `json:"id"`
	Type        string        `json:"type"`
	URL         string        `json:"url"`
	Status      string        `json:"status"`
	Attempts    int           `json:"attempts"`
	LastCode    int           `json:"last_status_code,omitempty"`
	LastError   string        `json:"last_error,omitempty"`
	NextAttempt *time.Time    `json:"next_attempt_at,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
	DeliveredAt *time.Time    `json:"delivered_at,omitempty"`
	Tries       []attemptJSON `json:"attempt_log,omitempty"`
}

type attemptJSON struct {
	Attempt    int       `json:"attempt"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
	At         time.Time `json:"at"`
}

func toCallbackJSON(cb *Callback, attempts []CallbackAttempt) callbackJSON {
	out := callbackJSON{ID: cb.ID, Type: cb.Type, URL: cb.URL, Status: cb.Status, Attempts: cb.Attempts, LastCode: cb.LastCode,
		LastError: cb.LastError, NextAttempt: tptr(cb.NextRunAt), CreatedAt: cb.CreatedAt, DeliveredAt: tptr(cb.DeliveredAt)}
	for _, a := range attempts {
		out.Tries = append(out.Tries, attemptJSON{Attempt: a.Attempt, StatusCode: a.StatusCode, Error: a.Error,
			DurationMS: a.Duration.Milliseconds(), At: a.CreatedAt})
	}
	return out
}

// handleDeliveries lists a job's callbacks with every delivery attempt.
func (g *Gateway) handleDeliveries(w http.ResponseWriter, r *http.Request, c caller) {
	j := g.loadJob(w, r, c)
	if j == nil {
		return
	}
	cbs, err := g.store.Callbacks(r.Context(), j.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	out := []callbackJSON{}
	for _, cb := range cbs {
		as, err := g.store.CallbackAttempts(r.Context(), cb.ID)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
			return
		}
		out = append(out, toCallbackJSON(cb, as))
	}
	writeJSON(w, http.StatusOK, map[string]any{"job_id": j.ID, "callback_url": j.CallbackURL, "deliveries": out})
}

func (g *Gateway) handleList(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query()
	f := JobFilter{TenantID: c.scope(), Tool: q.Get("tool"), Limit: 50}
	if c.Admin && q.Get("tenant") != "" {
		f.TenantID = q.Get("tenant")
	}
	if ae := parseListQuery(q, &f); ae != nil {
		writeError(w, http.StatusBadRequest, ae.Code, ae.Message, ae.Fields)
		return
	}
	if f.Tool != "" {
		if op := g.lookup(f.Tool); op == nil || !op.IsTool() {
			writeError(w, http.StatusBadRequest, "unknown_tool", fmt.Sprintf("unknown tool %q", f.Tool), []fieldError{{"tool", "unknown tool"}})
			return
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			writeError(w, http.StatusBadRequest, "invalid_limit", "limit must be an integer from 1 to 200", []fieldError{{"limit", "must be 1..200"}})
			return
		}
		f.Limit = n
	}
	limit := f.Limit
	f.Limit++ // one more than the page: a next page exists only if it comes back
	jobs, err := g.store.ListJobs(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	more := len(jobs) > limit
	jobs = jobs[:min(len(jobs), limit)]
	resp := struct {
		Jobs       []jobJSON `json:"jobs"`
		NextCursor string    `json:"next_cursor,omitempty"`
	}{Jobs: []jobJSON{}}
	for _, j := range jobs {
		resp.Jobs = append(resp.Jobs, toJSON(baseURL(r), j, nil))
	}
	if more {
		resp.NextCursor = jobs[len(jobs)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleDelete stops tracking a job that is not finished (it becomes
// canceled; the upstream project is not affected, Magic Hour has no cancel)
// and deletes its stored outputs. ?upstream=true also deletes the project
// on Magic Hour.
func (g *Gateway) handleDelete(w http.ResponseWriter, r *http.Request, c caller) {
	ctx := r.Context()
	j := g.loadJob(w, r, c)
	if j == nil {
		return
	}
	res, err := g.deleteJob(ctx, j, func() (*Job, error) { return g.store.Job(ctx, c.scope(), j.ID) }, "native",
		r.URL.Query().Get("upstream") == "true")
	switch {
	case errIsCreateInFlight(err):
		writeError(w, http.StatusConflict, "create_in_flight", "the upstream create is in flight; retry in a moment", nil)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	case res.StorageErr != nil:
		writeError(w, http.StatusInternalServerError, "internal", "could not delete a stored output", nil)
		return
	case res.UpstreamErr != nil:
		writeError(w, http.StatusBadGateway, "upstream_delete_failed", "deleting the project on Magic Hour failed: "+res.UpstreamErr.Error(), nil)
		return
	}
	outs, _ := g.store.Outputs(ctx, res.Job.ID)
	writeJSON(w, http.StatusOK, toJSON(baseURL(r), res.Job, outs))
}

func (g *Gateway) handleOutput(w http.ResponseWriter, r *http.Request, c caller) {
	j := g.loadJob(w, r, c)
	if j == nil {
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, "invalid_index", "output index must be a non-negative integer", nil)
		return
	}
	g.serveOutput(w, r, j, n)
}

// serveOutput serves output n of j from storage (Range, ETag = sha256).
func (g *Gateway) serveOutput(w http.ResponseWriter, r *http.Request, j *Job, n int) {
	outs, err := g.store.Outputs(r.Context(), j.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	if n >= len(outs) {
		writeError(w, http.StatusNotFound, "not_found", "no such output", nil)
		return
	}
	o := outs[n]
	if o.StoredAt.IsZero() {
		writeError(w, http.StatusConflict, "not_stored", "the output is not stored yet (job status "+string(j.Status)+")", nil)
		return
	}
	if o.StorageKey == "" {
		writeError(w, http.StatusGone, "deleted", "the output was deleted", nil)
		return
	}
	if g.redirectOutput(w, r, o) {
		return
	}
	f, _, err := g.storage.Open(r.Context(), o.StorageKey)
	if err != nil {
		g.log.Error("gateway: open stored output", "job", j.ID, "key", o.StorageKey, "err", err)
		writeError(w, http.StatusInternalServerError, "storage", "the stored output cannot be read", nil)
		return
	}
	defer f.Close()
	setOutputHeaders(w.Header(), j, o, r.URL.Query().Get("download") != "")
	w.Header().Set("ETag", `"`+o.SHA256+`"`)
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	http.ServeContent(w, r, "", o.StoredAt, f)
}

// handleEvents streams a job's timeline as Server-Sent Events. It reads the
// database (not process memory), so it sees what any replica did; it ends
// with an "end" event once the job is finished. Last-Event-ID resumes.
func (g *Gateway) handleEvents(w http.ResponseWriter, r *http.Request, c caller) {
	j := g.loadJob(w, r, c)
	if j == nil {
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "streaming unsupported", nil)
		return
	}
	var last int64
	if s := r.Header.Get("Last-Event-ID"); s != "" {
		last, _ = strconv.ParseInt(s, 10, 64)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	ctx := r.Context()
	tick := g.clock.NewTicker(g.cfg.SSEPoll)
	defer tick.Stop()
	woken, unsubscribe := g.cluster.subscribe(j.ID) // NOTIFY; the ticker is the fallback
	defer unsubscribe()
	lastWrite := g.now()
	for {
		cur, err := g.store.Job(ctx, "", j.ID)
		if err != nil {
			return
		}
		evs, err := g.store.Events(ctx, j.ID, last, 500)
		if err != nil {
			return
		}
		for _, ev := range evs {
			data, _ := json.Marshal(map[string]any{"id": ev.ID, "job_id": ev.JobID, "type": ev.Type, "data": ev.Data, "created_at": ev.CreatedAt})
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, data)
			last = ev.ID
		}
		if len(evs) > 0 {
			flusher.Flush()
			lastWrite = g.now()
			if len(evs) == 500 || cur.Status.Terminal() {
				continue // more to read, or check the end at once (no wake-up may follow)
			}
		}
		if cur.Status.Terminal() && len(evs) == 0 {
			data, _ := json.Marshal(map[string]any{"job_id": j.ID, "status": cur.Status})
			fmt.Fprintf(w, "event: end\ndata: %s\n\n", data)
			flusher.Flush()
			return
		}
		if g.now().Sub(lastWrite) > 15*time.Second {
			fmt.Fprint(w, ": keep-alive\n\n")
			flusher.Flush()
			lastWrite = g.now()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.Chan():
		case <-woken:
		}
	}
}

// --- admin ---

func (g *Gateway) handleCreateTenant(w http.ResponseWriter, r *http.Request, _ caller) {
	var req struct {
		Name                     string `json:"name"`
		CreditBudget             *int64 `json:"credit_budget"`
		MaxInFlight              *int   `json:"max_in_flight"`
		DeleteUpstreamAfterStore bool   `json:"delete_upstream_after_store"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed_json", "malformed JSON: "+err.Error(), nil)
		return
	}
	if strings.TrimSpace(req.Name) == "" {
		writeError(w, http.StatusBadRequest, "invalid_name", "name is required", []fieldError{{"name", "is required"}})
		return
	}
	if req.CreditBudget != nil && *req.CreditBudget < 0 {
		writeError(w, http.StatusBadRequest, "invalid_budget", "credit_budget must be >= 0", []fieldError{{"credit_budget", "must be >= 0"}})
		return
	}
	if req.MaxInFlight != nil && *req.MaxInFlight < 1 {
		writeError(w, http.StatusBadRequest, "invalid_max_in_flight", "max_in_flight must be >= 1", []fieldError{{"max_in_flight", "must be >= 1"}})
		return
	}
	t, key, err := CreateTenantWith(r.Context(), g.store, Tenant{Name: req.Name, CreditBudget: req.CreditBudget,
		MaxInFlight: req.MaxInFlight, DeleteUpstreamAfterStore: req.DeleteUpstreamAfterStore})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "could not create the tenant", nil)
		return
	}
	out := tenantJSON(t)
	out["api_key"], out["callback_secret"] = key, t.Secret
	writeJSON(w, http.StatusCreated, out)
}

func tenantJSON(t *Tenant) map[string]any {
	return map[string]any{"id": t.ID, "name": t.Name, "credit_budget": t.CreditBudget, "credits_used": t.CreditsUsed,
		"max_in_flight": t.MaxInFlight, "delete_upstream_after_store": t.DeleteUpstreamAfterStore, "created_at": t.CreatedAt,
		"disabled": !t.DisabledAt.IsZero(), "disabled_at": tptr(t.DisabledAt), "previous_key_valid_until": tptr(t.PrevKeyUntil)}
}

// handleUpdateTenant changes a tenant's limits: credit_budget,
// max_in_flight (null: no limit) and delete_upstream_after_store.
func (g *Gateway) handleUpdateTenant(w http.ResponseWriter, r *http.Request, _ caller) {
	t, err := g.store.Tenant(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such tenant", nil)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	var req map[string]json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed_json", "malformed JSON: "+err.Error(), nil)
		return
	}
	for k, v := range req {
		var err error
		switch k {
		case "credit_budget":
			t.CreditBudget = nil
			err = json.Unmarshal(v, &t.CreditBudget)
			if err == nil && t.CreditBudget != nil && *t.CreditBudget < 0 {
				err = errors.New("must be >= 0")
			}
		case "max_in_flight":
			t.MaxInFlight = nil
			err = json.Unmarshal(v, &t.MaxInFlight)
			if err == nil && t.MaxInFlight != nil && *t.MaxInFlight < 1 {
				err = errors.New("must be >= 1")
			}
		case "delete_upstream_after_store":
			err = json.Unmarshal(v, &t.DeleteUpstreamAfterStore)
		default:
			// The code is fixed: codes become metric labels, and field
			// names are the caller's words.
			writeError(w, http.StatusBadRequest, "unknown_field", "unknown field "+strconv.Quote(k)+"; accepted: credit_budget, max_in_flight, delete_upstream_after_store",
				[]fieldError{{k, "unknown field"}})
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_"+k, k+": "+err.Error(), []fieldError{{k, err.Error()}})
			return
		}
	}
	if err := g.store.UpdateTenantLimits(r.Context(), t); err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	writeJSON(w, http.StatusOK, tenantJSON(t))
}

func (g *Gateway) handleListTenants(w http.ResponseWriter, r *http.Request, _ caller) {
	ts, err := g.store.ListTenants(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	out := []map[string]any{}
	for _, t := range ts {
		out = append(out, tenantJSON(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenants": out})
}
