package gateway

// Batches: many jobs submitted together.
//
//	POST /api/batches        {"idempotency_key"?, "name"?, "skip_invalid"?, "lines": [{"line"?, "tool", "params", "key"?, "name"?}]}
//	GET  /api/batches        the tenant's batches, newest first: ?limit=&cursor=
//	GET  /api/batches/{id}   counts, credits and every job's status
//
// A POST validates every line first and, unless skip_invalid, refuses the
// whole request (400 invalid_lines, every bad line with its number, field
// and message) before anything is stored. Each line becomes a job through
// the same path as POST /api/jobs (budget, uploads, idempotency); its
// idempotency key is the line's key (else a hash of its content) scoped
// to the batch, so posting the same lines again (a resumed client, a lost
// answer) returns the same batch and the same jobs. Posting more lines
// with the same batch key adds them to the batch.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Batch is a group of a tenant's jobs.
type Batch struct {
	ID             string
	TenantID       string
	IdempotencyKey string
	Name           string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// BatchJob is one job of a batch.
type BatchJob struct {
	Line         int
	Key          string // the job's idempotency key
	JobID        string
	Tool         string
	Status       Status
	Credits      int64
	ErrorCode    string
	ErrorMessage string
	UpdatedAt    time.Time
}

// BatchSummary is a batch with its jobs counted by status.
type BatchSummary struct {
	Batch
	Total   int
	Counts  map[Status]int
	Credits int64
}

// Done is how many of the batch's jobs are finished.
func (s BatchSummary) Done() int {
	n := 0
	for st, c := range s.Counts {
		if st.Terminal() {
			n += c
		}
	}
	return n
}

// MaxBatchLines bounds the lines of one POST /api/batches (post more with
// the same idempotency_key to grow a batch).
const MaxBatchLines = 1000

type batchLineRequest struct {
	Line   int             `json:"line"`
	Tool   string          `json:"tool"`
	Params json.RawMessage `json:"params"`
	Key    string          `json:"key"`
	Name   string          `json:"name"`
}

type batchRequest struct {
	IdempotencyKey string             `json:"idempotency_key"`
	Name           string             `json:"name"`
	SkipInvalid    bool               `json:"skip_invalid"`
	Lines          []batchLineRequest `json:"lines"`
}

type batchLineError struct {
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

type batchJobJSON struct {
	Line    int       `json:"line"`
	Key     string    `json:"key,omitempty"`
	JobID   string    `json:"job_id,omitempty"`
	Tool    string    `json:"tool,omitempty"`
	Status  string    `json:"status"`
	Credits int64     `json:"credits"`
	Error   *apiError `json:"error,omitempty"`
}

type batchJSON struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	CreatedAt time.Time      `json:"created_at"`
	Total     int            `json:"total"`
	Done      int            `json:"done"`
	Counts    map[Status]int `json:"counts"`
	Credits   int64          `json:"credits"`
	Jobs      []batchJobJSON `json:"jobs,omitempty"`
	// Invalid lists the lines skipped with skip_invalid.
	Invalid []batchLineError `json:"invalid,omitempty"`
}

// batchRoutes adds the batch API to the gateway's mux.
func (g *Gateway) batchRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/batches", g.auth(false, g.handleBatchSubmit))
	mux.HandleFunc("GET /api/batches", g.auth(false, g.handleBatchList))
	mux.HandleFunc("GET /api/batches/{id}", g.auth(false, g.handleBatchGet))
}

// lineKey is a line's key within its batch: the given key, else a hash of
// the line's content with its occurrence number (the same rule as the
// CLI's batch runner, so identical lines ask for distinct jobs).
func lineKey(l *batchLineRequest, seen map[string]int) string {
	if l.Key != "" {
		return l.Key
	}
	h := sha256.New()
	var canon any
	dec := json.NewDecoder(bytes.NewReader(l.Params))
	dec.UseNumber()
	_ = dec.Decode(&canon)
	b, _ := json.Marshal(canon)
	fmt.Fprintf(h, "%s\x00%s\x00%s", l.Tool, b, l.Name)
	k := "h-" + hex.EncodeToString(h.Sum(nil))[:24]
	seen[k]++
	if n := seen[k]; n > 1 {
		k += "-" + strconv.Itoa(n)
	}
	return k
}

func (g *Gateway) handleBatchSubmit(w http.ResponseWriter, r *http.Request, c caller) {
	if c.Tenant == nil {
		writeError(w, http.StatusForbidden, "forbidden", "batches are submitted with a tenant key, not the admin key", nil)
		return
	}
	limit := 16 * g.cfg.MaxBodyBytes
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body larger than %d bytes; post the lines in several requests with one idempotency_key", limit), nil)
			return
		}
		writeError(w, http.StatusBadRequest, "bad_body", "could not read the request body", nil)
		return
	}
	var req batchRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed_json", "malformed JSON: "+err.Error(), nil)
		return
	}
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = r.Header.Get("Idempotency-Key")
	}
	out, status, apiErr, lineErrs := g.submitBatch(r.Context(), c.Tenant, req)
	if apiErr != nil {
		if len(lineErrs) > 0 {
			writeJSON(w, status, map[string]any{"message": apiErr.Message, "error": map[string]any{
				"code": apiErr.Code, "message": apiErr.Message, "fields": apiErr.Fields, "lines": lineErrs}})
			return
		}
		writeError(w, status, apiErr.Code, apiErr.Message, apiErr.Fields)
		return
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", "/api/batches/"+out.ID)
	}
	writeJSON(w, status, out)
}

// submitBatch validates and records a batch for tenant t (see the top of
// this file). It answers the HTTP status, the batch with this
// request's jobs, or an error (with every bad line for invalid_lines).
func (g *Gateway) submitBatch(ctx context.Context, t *Tenant, req batchRequest) (*batchJSON, int, *apiError, []batchLineError) {
	bad := func(code, msg string, fields ...fieldError) (*batchJSON, int, *apiError, []batchLineError) {
		return nil, http.StatusBadRequest, &apiError{Code: code, Message: msg, Fields: fields}, nil
	}
	bs, err := g.bstore()
	if err != nil {
		return nil, http.StatusNotImplemented, &apiError{Code: "not_supported", Message: err.Error()}, nil
	}
	if len(req.Lines) == 0 {
		return bad("no_lines", "a batch needs at least one line", fieldError{"lines", "is empty"})
	}
	if len(req.Lines) > MaxBatchLines {
		return bad("too_many_lines", fmt.Sprintf("at most %d lines per request; post the rest with the same idempotency_key", MaxBatchLines),
			fieldError{"lines", "too many"})
	}
	if len(req.IdempotencyKey) > 100 {
		return bad("invalid_idempotency_key", "idempotency_key is longer than 100 characters", fieldError{"idempotency_key", "longer than 100 characters"})
	}
	if len(req.Name) > 200 {
		return bad("invalid_name", "name is longer than 200 characters", fieldError{"name", "longer than 200 characters"})
	}
	type lineJob struct {
		line int
		key  string
		job  *Job
	}
	var jobs []lineJob
	var lineErrs []batchLineError
	seen, keys := map[string]int{}, map[string]int{}
	for i := range req.Lines {
		l := &req.Lines[i]
		n := l.Line
		if n <= 0 {
			n = i + 1
		}
		key := lineKey(l, seen)
		if first, dup := keys[key]; dup {
			lineErrs = append(lineErrs, batchLineError{n, "key", fmt.Sprintf("duplicate of line %d's key", first)})
			continue
		}
		keys[key] = n
		if len(key) > 140 {
			lineErrs = append(lineErrs, batchLineError{n, "key", "longer than 140 characters"})
			continue
		}
		job, _, ae := g.validateSubmit(&submitRequest{Tool: l.Tool, Params: l.Params})
		if ae != nil {
			if len(ae.Fields) == 0 {
				lineErrs = append(lineErrs, batchLineError{n, "", ae.Message})
			}
			for _, f := range ae.Fields {
				lineErrs = append(lineErrs, batchLineError{n, f.Field, f.Message})
			}
			continue
		}
		jobs = append(jobs, lineJob{n, key, job})
	}
	if len(lineErrs) > 0 && !req.SkipInvalid {
		fields := make([]fieldError, 0, len(lineErrs))
		for _, e := range lineErrs {
			fields = append(fields, fieldError{fmt.Sprintf("lines[%d].%s", e.Line, e.Field), e.Message})
		}
		return nil, http.StatusBadRequest, &apiError{Code: "invalid_lines",
			Message: fmt.Sprintf("%d invalid line(s), first: line %d: %s %s; nothing was created", len(lineErrs), lineErrs[0].Line, lineErrs[0].Field, lineErrs[0].Message),
			Fields:  fields}, lineErrs
	}
	now := g.now()
	b := &Batch{ID: "bat_" + strings.TrimPrefix(newJobID(now), "job_"), TenantID: t.ID, IdempotencyKey: req.IdempotencyKey, Name: req.Name, CreatedAt: now, UpdatedAt: now}
	b, created, err := bs.createBatch(ctx, b)
	if err != nil {
		g.log.Error("gateway: create batch", "err", err)
		return nil, http.StatusInternalServerError, &apiError{Code: "internal", Message: "could not record the batch"}, nil
	}
	scope := b.IdempotencyKey
	if scope == "" {
		scope = b.ID
	}
	out := &batchJSON{ID: b.ID, Name: b.Name, CreatedAt: b.CreatedAt, Invalid: lineErrs}
	for _, lj := range jobs {
		lj.job.IdempotencyKey = "batch/" + scope + "/" + lj.key
		got, _, status, ae := g.accept(ctx, t, lj.job, nil)
		if ae != nil {
			if status >= 500 {
				return nil, status, ae, nil
			}
			out.Jobs = append(out.Jobs, batchJobJSON{Line: lj.line, Key: lj.key, Tool: lj.job.Tool, Status: "refused", Error: ae})
			continue
		}
		if err := bs.attachJob(ctx, b.ID, got.ID, lj.line); err != nil {
			g.log.Error("gateway: attach job to batch", "err", err, "batch", b.ID, "job", got.ID)
			return nil, http.StatusInternalServerError, &apiError{Code: "internal", Message: "could not record the batch's jobs; post again"}, nil
		}
		jj := batchJobJSON{Line: lj.line, Key: lj.key, JobID: got.ID, Tool: got.Tool, Status: string(got.Status), Credits: got.Credits}
		if got.ErrorCode != "" {
			jj.Error = &apiError{Code: got.ErrorCode, Message: got.ErrorMessage}
		}
		out.Jobs = append(out.Jobs, jj)
	}
	sum, err := g.batchSummaries(ctx, []*Batch{b})
	if err == nil && len(sum) == 1 {
		out.Total, out.Done, out.Counts, out.Credits = sum[0].Total, sum[0].Done(), sum[0].Counts, sum[0].Credits
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		g.log.Info("gateway: batch accepted", "batch", b.ID, "tenant", t.ID, "lines", len(req.Lines), "jobs", len(out.Jobs))
	}
	return out, status, nil, nil
}

func (g *Gateway) batchSummaries(ctx context.Context, bs []*Batch) ([]BatchSummary, error) {
	st, err := g.bstore()
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(bs))
	for i, b := range bs {
		ids[i] = b.ID
	}
	counts, credits, err := st.batchCounts(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]BatchSummary, len(bs))
	for i, b := range bs {
		s := BatchSummary{Batch: *b, Counts: counts[b.ID], Credits: credits[b.ID]}
		if s.Counts == nil {
			s.Counts = map[Status]int{}
		}
		for _, n := range s.Counts {
			s.Total += n
		}
		out[i] = s
	}
	return out, nil
}

// Batches lists the batches a tenant ("" : every tenant) sees, newest
// first, with their counts; cursor is the last id of the previous page.
func (g *Gateway) Batches(ctx context.Context, tenantID, cursor string, limit int) ([]BatchSummary, error) {
	st, err := g.bstore()
	if err != nil {
		return nil, err
	}
	bs, err := st.listBatches(ctx, tenantID, cursor, limit)
	if err != nil {
		return nil, err
	}
	return g.batchSummaries(ctx, bs)
}

// BatchDetail returns a batch (ErrNotFound outside the tenant's scope)
// with its counts and jobs in line order.
func (g *Gateway) BatchDetail(ctx context.Context, tenantID, id string) (*BatchSummary, []BatchJob, error) {
	st, err := g.bstore()
	if err != nil {
		return nil, nil, err
	}
	b, err := st.batch(ctx, tenantID, id)
	if err != nil {
		return nil, nil, err
	}
	sums, err := g.batchSummaries(ctx, []*Batch{b})
	if err != nil {
		return nil, nil, err
	}
	jobs, err := st.batchJobs(ctx, b.ID)
	if err != nil {
		return nil, nil, err
	}
	return &sums[0], jobs, nil
}

// JobBatch returns the batch of a job and its line ("" when none).
func (g *Gateway) JobBatch(ctx context.Context, jobID string) (string, int, error) {
	st, err := g.bstore()
	if err != nil {
		return "", 0, err
	}
	return st.jobBatch(ctx, jobID)
}

func toBatchJSON(s BatchSummary) batchJSON {
	return batchJSON{ID: s.ID, Name: s.Name, CreatedAt: s.CreatedAt, Total: s.Total, Done: s.Done(), Counts: s.Counts, Credits: s.Credits}
}

func (g *Gateway) handleBatchGet(w http.ResponseWriter, r *http.Request, c caller) {
	s, jobs, err := g.BatchDetail(r.Context(), c.scope(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such batch", nil)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	out := toBatchJSON(*s)
	out.Jobs = []batchJobJSON{}
	for _, j := range jobs {
		jj := batchJobJSON{Line: j.Line, Key: BatchLineKey(j.Key), JobID: j.JobID, Tool: j.Tool, Status: string(j.Status), Credits: j.Credits}
		if j.ErrorCode != "" || j.ErrorMessage != "" {
			jj.Error = &apiError{Code: j.ErrorCode, Message: j.ErrorMessage}
		}
		out.Jobs = append(out.Jobs, jj)
	}
	writeJSON(w, http.StatusOK, out)
}

// BatchLineKey is the line's own key from a job's batch-scoped key.
func BatchLineKey(jobKey string) string {
	rest, ok := strings.CutPrefix(jobKey, "batch/")
	if !ok {
		return jobKey
	}
	if i := strings.Index(rest, "/"); i >= 0 {
		return rest[i+1:]
	}
	return rest
}

func (g *Gateway) handleBatchList(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query()
	limit := 50
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			writeError(w, http.StatusBadRequest, "invalid_limit", "limit must be an integer from 1 to 200", []fieldError{{"limit", "must be 1..200"}})
			return
		}
		limit = n
	}
	tenant := c.scope()
	if c.Admin && q.Get("tenant") != "" {
		tenant = q.Get("tenant")
	}
	sums, err := g.Batches(r.Context(), tenant, q.Get("cursor"), limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	resp := struct {
		Batches    []batchJSON `json:"batches"`
		NextCursor string      `json:"next_cursor,omitempty"`
	}{Batches: []batchJSON{}}
	for _, s := range sums {
		resp.Batches = append(resp.Batches, toBatchJSON(s))
	}
	if len(sums) == limit {
		resp.NextCursor = sums[len(sums)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
}
