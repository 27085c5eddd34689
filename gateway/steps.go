package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
	"github.com/hourglasshq/hourglass/magichour/webhook"
)

func toolP50(tool string) time.Duration {
	if op := catalog.Lookup(tool); op != nil && op.P50 > 0 {
		return op.P50
	}
	return time.Minute
}

// submit sends the upstream create of a pending job, exactly once: the
// creating state (with the lease) is committed before the request leaves.
// Files uploaded to the gateway are sent to Magic Hour first, and the
// tenant's max_in_flight is checked in the same transaction as creating.
func (g *Gateway) submit(ctx context.Context, j *Job) error {
	params, _, err := g.resolveUploads(ctx, j.TenantID, catalog.Lookup(j.Tool), j.Params)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		now := g.now()
		release(j)
		j.Attempts++
		ev := g.event("upload_failed", map[string]any{"error": err.Error(), "attempt": j.Attempts})
		u := JobUpdate{Job: j, Events: []Event{ev}}
		if errors.Is(err, errUploadMissing) || j.Attempts >= g.cfg.MaxAttempts {
			j.Status, j.ErrorCode, j.ErrorMessage = StatusError, "upload_failed", err.Error()
			j.FinishedAt, j.NextRunAt = now, time.Time{}
			u.CreditsDelta, j.Credits = -j.Credits, 0
		} else {
			j.NextRunAt = now.Add(g.backoff(j.Attempts))
		}
		return g.save(ctx, u)
	}

	firstTry := j.UpdatedAt.Equal(j.CreatedAt)
	u := JobUpdate{Job: j, Events: []Event{g.event("create_sent", map[string]any{"tool": j.Tool, "attempt": j.Attempts + 1})}}
	if t, err := g.store.Tenant(ctx, j.TenantID); err == nil && t.MaxInFlight != nil {
		u.InFlightLimit, u.ThrottleFor = *t.MaxInFlight, g.cfg.ThrottleRetry
	}
	// The rate limiter's token first: waiting for it in creating would
	// turn every job a crash interrupts there into create_outcome_unknown
	// although nothing was sent.
	if err := g.upWait(ctx); err != nil {
		return err
	}
	j.Status = StatusCreating
	j.NextRunAt = g.now() // claimable again once the lease expires, if we die
	err = g.save(ctx, u)
	if errors.Is(err, ErrThrottled) {
		// The tenant is at max_in_flight: stay pending, queued locally.
		j.Status = StatusPending
		j.NextRunAt = g.now().Add(g.cfg.ThrottleRetry)
		release(j)
		tu := JobUpdate{Job: j}
		if firstTry {
			tu.Events = []Event{g.event("queued_locally", map[string]any{"reason": "tenant max_in_flight reached", "max_in_flight": u.InFlightLimit})}
		}
		return g.save(ctx, tu)
	}
	if err != nil {
		return err
	}

	res, err := g.upCreate(ctx, j.Tool, params)
	if h := g.afterCreate.Load(); h != nil && err == nil {
		(*h)(res.ID) // tests: let the project's webhooks arrive first
	}
	now := g.now()
	release(j)
	switch {
	case err == nil:
		return g.recordOrHold(ctx, j, res, now) // held.go: never orphan a billed create
	case errors.Is(err, magichour.ErrCreateOutcomeUnknown):
		return g.finishUnknown(ctx, j, err.Error())
	case permanentCreateError(err):
		code := "create_refused"
		var ae *magichour.APIError
		if errors.As(err, &ae) {
			code = fmt.Sprintf("upstream_%d", ae.StatusCode)
		} else if errors.Is(err, magichour.ErrInvalidRequest) {
			code = "invalid_params"
		}
		j.Status, j.ErrorCode, j.ErrorMessage = StatusError, code, err.Error()
		j.FinishedAt, j.NextRunAt = now, time.Time{}
		delta := -j.Credits // nothing was created: release the reservation
		j.Credits = 0
		return g.save(ctx, JobUpdate{Job: j, CreditsDelta: delta, Events: []Event{g.event("error", map[string]any{"code": code, "message": err.Error()})}})
	default:
		// The SDK guarantees no job was made (refused connection, 429,
		// 502/503 without an id): back to pending, later.
		j.Attempts++
		j.Status = StatusPending
		ev := g.event("create_failed", map[string]any{"error": err.Error(), "attempt": j.Attempts})
		u := JobUpdate{Job: j, Events: []Event{ev}}
		if j.Attempts >= g.cfg.MaxAttempts {
			j.Status, j.ErrorCode, j.ErrorMessage = StatusError, "create_failed", err.Error()
			j.FinishedAt, j.NextRunAt = now, time.Time{}
			u.CreditsDelta, j.Credits = -j.Credits, 0
		} else {
			j.NextRunAt = now.Add(g.backoff(j.Attempts))
		}
		return g.save(ctx, u)
	}
}

func permanentCreateError(err error) bool {
	var ae *magichour.APIError
	if errors.As(err, &ae) {
		return !ae.Temporary()
	}
	return errors.Is(err, magichour.ErrInvalidRequest)
}

// recordCreated stores the upstream id. If the job changed meanwhile (it
// can only have been marked create_outcome_unknown), the id is recorded
// anyway: it is the answer to that unknown.
func (g *Gateway) recordCreated(ctx context.Context, j *Job, res *magichour.CreateResponse, now time.Time) error {
	for range 3 {
		j.Status, j.UpstreamID, j.UpstreamStatus = StatusSubmitted, res.ID, "queued"
		j.ErrorCode, j.ErrorMessage, j.FinishedAt = "", "", time.Time{}
		delta := int64(res.CreditsCharged) - j.Credits
		j.Credits = int64(res.CreditsCharged)
		j.SubmittedAt, j.Attempts, j.Polls = now, 0, 0
		j.ExpectedAt = now.Add(g.expected(j.Tool))
		j.NextRunAt = j.ExpectedAt
		release(j)
		err := g.save(ctx, JobUpdate{Job: j, CreditsDelta: delta, Events: []Event{g.event("submitted", map[string]any{
			"upstream_id": res.ID, "credits": res.CreditsCharged, "expected_at": j.ExpectedAt})}})
		if !errors.Is(err, ErrConflict) {
			if err == nil {
				g.nudge()
				// Webhooks that outran this answer wait in the inbox.
				g.drainInbox(context.WithoutCancel(ctx), res.ID)
			}
			return err
		}
		cur, rerr := g.store.Job(context.WithoutCancel(ctx), "", j.ID)
		if rerr != nil {
			return rerr
		}
		if cur.Status != StatusCreating && cur.Status != StatusCreateOutcomeUnknown {
			g.log.Error("gateway: created upstream but the job moved on", "job", j.ID, "status", cur.Status, "upstream_id", res.ID)
			return err
		}
		*j = *cur
	}
	return ErrConflict
}

// finishUnknown parks a job whose create may or may not have happened.
func (g *Gateway) finishUnknown(ctx context.Context, j *Job, why string) error {
	now := g.now()
	j.Status, j.ErrorCode, j.ErrorMessage = StatusCreateOutcomeUnknown, "create_outcome_unknown", why
	j.FinishedAt, j.NextRunAt = now, time.Time{}
	release(j)
	g.log.Warn("gateway: create outcome unknown; not resending", "job", j.ID, "tool", j.Tool, "why", why)
	return g.save(ctx, JobUpdate{Job: j, Events: []Event{g.event("create_outcome_unknown", map[string]any{"reason": why})}})
}

// upstreamState is a project as seen by a poll or a webhook.
type upstreamState struct {
	Raw            json.RawMessage // the project as received, for the drop-in API
	Status         string
	ErrorCode      string
	ErrorMessage   string
	CreditsCharged int
	Downloads      []Output
}

func stateFromProject(p *magichour.Project) upstreamState {
	st := upstreamState{Status: string(p.Status), CreditsCharged: p.CreditsCharged}
	st.Raw, _ = json.Marshal(p)
	if p.Error != nil {
		st.ErrorCode, st.ErrorMessage = p.Error.Code, p.Error.Message
	}
	for i, d := range p.Downloads {
		st.Downloads = append(st.Downloads, Output{Index: i, UpstreamURL: d.URL, ExpiresAt: d.ExpiresAt})
	}
	return st
}

func stateFromWebhook(p webhook.Project) upstreamState {
	st := upstreamState{Status: string(p.Status), CreditsCharged: p.CreditsCharged}
	st.Raw, _ = json.Marshal(p)
	if p.Error != nil {
		st.ErrorCode, st.ErrorMessage = p.Error.Code, p.Error.Message
	}
	for i, d := range p.Downloads {
		st.Downloads = append(st.Downloads, Output{Index: i, UpstreamURL: d.URL, ExpiresAt: d.ExpiresAt})
	}
	return st
}

// rank orders the tracking statuses so that late or reordered news never
// moves a job backwards.
func rank(s Status) int {
	switch s {
	case StatusSubmitted:
		return 0
	case StatusQueued:
		return 1
	case StatusRendering:
		return 2
	}
	return 3
}

// apply advances a tracked job with what upstream says. It reports whether
// the job's state changed; the update carries the events and outputs.
func (g *Gateway) apply(j *Job, st upstreamState, now time.Time) (JobUpdate, bool) {
	u := JobUpdate{Job: j}
	if !j.Status.Tracking() {
		return u, false
	}
	j.UpstreamStatus = st.Status
	var next Status
	switch st.Status {
	case "draft", "queued":
		next = StatusQueued
	case "rendering":
		next = StatusRendering
	case "complete":
		next = StatusStoring
	case "error":
		next = StatusError
	case "canceled":
		next = StatusCanceled
	default:
		return u, false
	}
	if rank(next) <= rank(j.Status) {
		return u, false
	}
	prev := j.Status
	j.Status = next
	j.Attempts = 0
	if next == StatusStoring || next == StatusError || next == StatusCanceled {
		j.UpstreamProject = st.Raw
	}
	switch next {
	case StatusStoring:
		if len(st.Downloads) == 0 {
			j.Status, j.ErrorCode, j.ErrorMessage = StatusError, "no_outputs", "the project completed without any download"
			j.FinishedAt, j.NextRunAt = now, time.Time{}
			break
		}
		if st.CreditsCharged > 0 {
			u.CreditsDelta = int64(st.CreditsCharged) - j.Credits
			j.Credits = int64(st.CreditsCharged)
		}
		u.Outputs = st.Downloads
		j.NextRunAt = now
		release(j) // a poll in flight loses its save; the store step starts now
	case StatusError, StatusCanceled:
		if next == StatusError {
			j.ErrorCode, j.ErrorMessage = st.ErrorCode, st.ErrorMessage
			if j.ErrorCode == "" {
				j.ErrorCode = "unknown_error"
			}
		} else {
			j.ErrorCode, j.ErrorMessage = "canceled", "the project was canceled on Magic Hour"
		}
		u.CreditsDelta = -j.Credits // refunded upstream
		j.Credits = 0
		j.FinishedAt, j.NextRunAt = now, time.Time{}
	}
	u.Events = append(u.Events, g.event("status", map[string]any{"from": prev, "to": j.Status}))
	return u, true
}

// poll reads a tracked job's project (the fallback when no webhook came).
func (g *Gateway) poll(ctx context.Context, j *Job) error {
	p, err := g.upGetProject(ctx, j.Kind, j.UpstreamID)
	now := g.now()
	release(j)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		j.Attempts++
		ev := g.event("poll_failed", map[string]any{"error": err.Error(), "attempt": j.Attempts})
		if errors.Is(err, magichour.ErrNotFound) || j.Attempts >= g.cfg.MaxAttempts {
			code := "poll_failed"
			if errors.Is(err, magichour.ErrNotFound) {
				code = "upstream_not_found"
			}
			j.Status, j.ErrorCode, j.ErrorMessage = StatusError, code, err.Error()
			j.FinishedAt, j.NextRunAt = now, time.Time{}
		} else {
			j.NextRunAt = now.Add(g.backoff(j.Attempts))
		}
		return g.save(ctx, JobUpdate{Job: j, Events: []Event{ev}})
	}
	j.Polls++
	u, changed := g.apply(j, stateFromProject(p), now)
	u.Events = append([]Event{g.event("poll", map[string]any{"upstream_status": p.Status, "poll": j.Polls})}, u.Events...)
	if !changed || j.Status.Tracking() {
		j.NextRunAt = now.Add(g.pollInterval(j))
	}
	if err := g.save(ctx, u); err != nil {
		return err
	}
	if changed {
		g.nudge()
	}
	return nil
}

// storeOutputs copies every output not yet stored; the job becomes stored
// only when all of them are safe.
func (g *Gateway) storeOutputs(ctx context.Context, j *Job) error {
	outs, err := g.store.Outputs(ctx, j.ID)
	if err != nil {
		return err
	}
	refreshed := false
	var failure error
	for i := range outs {
		if !outs[i].StoredAt.IsZero() {
			continue
		}
		if err := g.storeOne(ctx, j, outs, i, &refreshed); err != nil {
			failure = fmt.Errorf("output %d: %w", i, err)
			break
		}
	}
	now := g.now()
	release(j)
	if failure != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		j.Attempts++
		ev := g.event("store_failed", map[string]any{"error": failure.Error(), "attempt": j.Attempts})
		if j.Attempts >= g.cfg.MaxAttempts {
			j.Status, j.ErrorCode, j.ErrorMessage = StatusError, "store_failed", failure.Error()
			j.FinishedAt, j.NextRunAt = now, time.Time{}
		} else {
			j.NextRunAt = now.Add(g.backoff(j.Attempts))
		}
		g.log.Warn("gateway: storing outputs failed", "job", j.ID, "attempt", j.Attempts, "err", failure)
		return g.save(ctx, JobUpdate{Job: j, Events: []Event{ev}})
	}
	evs := []Event{g.event("stored", map[string]any{"outputs": len(outs)})}
	if j.DeleteUpstream && j.UpstreamID != "" {
		// The guide's clean-up step: every output is safe, so the Magic
		// Hour project can go. A failure is recorded, not retried: the
		// project expires upstream on its own terms.
		if err := g.upDeleteProject(ctx, j.Kind, j.UpstreamID); err != nil && !errors.Is(err, magichour.ErrNotFound) {
			g.log.Warn("gateway: delete upstream after store", "job", j.ID, "err", err)
			evs = append(evs, g.event("upstream_delete_failed", map[string]any{"error": err.Error()}))
		} else {
			evs = append(evs, g.event("upstream_deleted", map[string]any{"upstream_id": j.UpstreamID}))
		}
		now = g.now()
	}
	j.Status, j.FinishedAt, j.NextRunAt, j.Attempts = StatusStored, now, time.Time{}, 0
	return g.save(ctx, JobUpdate{Job: j, Events: evs})
}

// errExpired marks a download URL the storage host refused (expired).
var errExpired = errors.New("download URL expired or refused")

func (g *Gateway) storeOne(ctx context.Context, j *Job, outs []Output, i int, refreshed *bool) error {
	for {
		o := &outs[i]
		if !*refreshed && !o.ExpiresAt.IsZero() && o.ExpiresAt.Before(g.now().Add(5*time.Second)) {
			if err := g.refreshURLs(ctx, j, outs); err != nil {
				return err
			}
			*refreshed = true
		}
		err := g.download(ctx, j, o)
		if errors.Is(err, errExpired) && !*refreshed {
			if err := g.refreshURLs(ctx, j, outs); err != nil {
				return err
			}
			*refreshed = true
			continue
		}
		return err
	}
}

// refreshURLs re-reads the project for fresh download URLs.
func (g *Gateway) refreshURLs(ctx context.Context, j *Job, outs []Output) error {
	p, err := g.upGetProject(ctx, j.Kind, j.UpstreamID)
	if err != nil {
		return fmt.Errorf("refresh download URLs: %w", err)
	}
	if len(p.Downloads) != len(outs) {
		return fmt.Errorf("refresh download URLs: project has %d downloads, job has %d outputs", len(p.Downloads), len(outs))
	}
	for i := range outs {
		outs[i].UpstreamURL, outs[i].ExpiresAt = p.Downloads[i].URL, p.Downloads[i].ExpiresAt
		if outs[i].StoredAt.IsZero() {
			if err := g.store.UpdateOutput(ctx, outs[i]); err != nil {
				return err
			}
		}
	}
	return g.store.AddEvent(ctx, g.event2(j.ID, "urls_refreshed", map[string]any{"outputs": len(outs)}))
}

func (g *Gateway) event2(jobID, typ string, data any) Event {
	ev := g.event(typ, data)
	ev.JobID = jobID
	return ev
}

// download streams one output to storage and verifies its size.
func (g *Gateway) download(ctx context.Context, j *Job, o *Output) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.UpstreamURL, nil)
	if err != nil {
		return err
	}
	resp, err := g.cfg.DownloadClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == 401 || resp.StatusCode == 403 || resp.StatusCode == 404 || resp.StatusCode == 410:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%w: %s", errExpired, resp.Status)
	default:
		return fmt.Errorf("download: %s", resp.Status)
	}
	key := storageKey(j, o)
	size, sum, err := g.storage.Put(ctx, key, resp.Body)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if resp.ContentLength >= 0 && size != resp.ContentLength {
		_ = g.storage.Delete(context.WithoutCancel(ctx), key)
		return fmt.Errorf("download truncated: got %d of %d bytes", size, resp.ContentLength)
	}
	g.metrics.storedBytes.Add(float64(size))
	o.StorageKey, o.Size, o.SHA256, o.StoredAt = key, size, sum, g.now()
	o.ContentType = resp.Header.Get("Content-Type")
	sctx := context.WithoutCancel(ctx)
	return g.store.UpdateOutput(sctx, *o, g.event2(j.ID, "output_stored", map[string]any{"index": o.Index, "size": size, "sha256": sum}))
}

// storageKey is "<tenant>/<shard>/<job>-<index><ext>", the extension
// taken from the download URL's path when it looks like one. The shard is
// the job id's last two characters (random: 1,024 folders per tenant), so
// folders are created once rather than one per job (older keys,
// "<tenant>/<job>/<index><ext>", stay valid: keys are stored per output).
func storageKey(j *Job, o *Output) string {
	ext := ""
	if i := strings.IndexAny(o.UpstreamURL, "?#"); i >= 0 {
		ext = path.Ext(o.UpstreamURL[:i])
	} else {
		ext = path.Ext(o.UpstreamURL)
	}
	if len(ext) > 8 || strings.ContainsAny(ext, "/\\:") {
		ext = ""
	}
	return fmt.Sprintf("%s/%s/%s-%d%s", j.TenantID, j.ID[len(j.ID)-2:], j.ID, o.Index, strings.ToLower(ext))
}
