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

	"github.com/hourglasshq/hourglass/gateway/job"
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
		return g.persist(ctx)(j.UploadFailed(now, err, g.retry(j, errors.Is(err, errUploadMissing), now)))
	}

	firstTry := j.UpdatedAt.Equal(j.CreatedAt)
	var limit int
	if t, err := g.store.Tenant(ctx, j.TenantID); err == nil && t.MaxInFlight != nil {
		limit = *t.MaxInFlight
	}
	// The rate limiter's token first: waiting for it in creating would
	// turn every job a crash interrupts there into create_outcome_unknown
	// although nothing was sent.
	if err := g.upWait(ctx); err != nil {
		return err
	}
	c, err := j.StartCreate(g.now())
	if err != nil {
		return err
	}
	u := update(c)
	u.InFlightLimit, u.ThrottleFor = limit, g.cfg.ThrottleRetry
	err = g.save(ctx, u)
	if errors.Is(err, ErrThrottled) {
		// The tenant is at max_in_flight: stay pending, queued locally.
		now := g.now()
		return g.persist(ctx)(j.Throttled(now, now.Add(g.cfg.ThrottleRetry), firstTry, limit))
	}
	if err != nil {
		return err
	}

	res, err := g.upCreate(ctx, j.Tool, params)
	if h := g.afterCreate.Load(); h != nil && err == nil {
		(*h)(res.ID) // tests: let the project's webhooks arrive first
	}
	now := g.now()
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
		return g.persist(ctx)(j.CreateRefused(now, code, err.Error()))
	default:
		// The SDK guarantees no job was made (refused connection, 429,
		// 502/503 without an id): back to pending, later.
		return g.persist(ctx)(j.CreateFailed(now, err, g.retry(j, false, now)))
	}
}

// retry decides the outcome of a failed step of j (its next attempt).
func (g *Gateway) retry(j *Job, permanent bool, now time.Time) job.Retry {
	n := j.Attempts + 1
	return job.Retry{Final: permanent || n >= g.cfg.MaxAttempts, At: now.Add(g.backoff(n))}
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
		c, err := j.Created(now, res.ID, int64(res.CreditsCharged), now.Add(g.expected(j.Tool)))
		if err == nil {
			err = g.save(ctx, update(c))
		}
		if !errors.Is(err, ErrConflict) {
			if err == nil {
				g.nudge()
				// Webhooks that outran this answer wait in the inbox.
				g.drainInbox(context.WithoutCancel(ctx), res.ID)
			} else if errors.Is(err, job.ErrIllegal) {
				g.log.Error("gateway: created upstream but the job moved on", "job", j.ID, "status", j.Status, "upstream_id", res.ID)
				return fmt.Errorf("%w: %w", ErrConflict, err)
			}
			return err
		}
		cur, rerr := g.store.Job(context.WithoutCancel(ctx), "", j.ID)
		if rerr != nil {
			return rerr
		}
		*j = *cur
	}
	return ErrConflict
}

// finishUnknown parks a job whose create may or may not have happened.
func (g *Gateway) finishUnknown(ctx context.Context, j *Job, why string) error {
	g.log.Warn("gateway: create outcome unknown; not resending", "job", j.ID, "tool", j.Tool, "why", why)
	return g.persist(ctx)(j.OutcomeUnknown(g.now(), why))
}

func stateFromProject(p *magichour.Project) job.Upstream {
	st := job.Upstream{Status: string(p.Status), CreditsCharged: p.CreditsCharged}
	st.Raw, _ = json.Marshal(p)
	if p.Error != nil {
		st.ErrorCode, st.ErrorMessage = p.Error.Code, p.Error.Message
	}
	for i, d := range p.Downloads {
		st.Downloads = append(st.Downloads, Output{Index: i, UpstreamURL: d.URL, ExpiresAt: d.ExpiresAt})
	}
	return st
}

func stateFromWebhook(p webhook.Project) job.Upstream {
	st := job.Upstream{Status: string(p.Status), CreditsCharged: p.CreditsCharged}
	st.Raw, _ = json.Marshal(p)
	if p.Error != nil {
		st.ErrorCode, st.ErrorMessage = p.Error.Code, p.Error.Message
	}
	for i, d := range p.Downloads {
		st.Downloads = append(st.Downloads, Output{Index: i, UpstreamURL: d.URL, ExpiresAt: d.ExpiresAt})
	}
	return st
}

// poll reads a tracked job's project (the fallback when no webhook came).
func (g *Gateway) poll(ctx context.Context, j *Job) error {
	p, err := g.upGetProject(ctx, j.Kind, j.UpstreamID)
	now := g.now()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		code := "poll_failed"
		if errors.Is(err, magichour.ErrNotFound) {
			code = "upstream_not_found"
		}
		return g.persist(ctx)(j.PollFailed(now, err, code, g.retry(j, errors.Is(err, magichour.ErrNotFound), now)))
	}
	c, changed, err := j.Polled(now, stateFromProject(p), g.pollInterval(j))
	if err != nil {
		return err
	}
	if err := g.save(ctx, update(c)); err != nil {
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
			if errors.Is(err, ErrConflict) {
				return err // the job changed (deleted, ...): its file is discarded
			}
			failure = fmt.Errorf("output %d: %w", i, err)
			break
		}
	}
	now := g.now()
	if failure != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		g.log.Warn("gateway: storing outputs failed", "job", j.ID, "attempt", j.Attempts+1, "err", failure)
		return g.persist(ctx)(j.StoreFailed(now, failure, g.retry(j, false, now)))
	}
	var evs []Event
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
	return g.persist(ctx)(j.Stored(now, len(outs), evs...))
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
	o.StorageKey, o.Size, o.SHA256, o.StoredAt = key, size, sum, g.now()
	o.ContentType = resp.Header.Get("Content-Type")
	sctx := context.WithoutCancel(ctx)
	// The commit checks that the job is still the one this step claimed
	// (storing, same version): a job deleted (or otherwise changed) during
	// the download does not get the output; its file is discarded.
	err = g.store.CommitOutput(sctx, j, *o, g.event2(j.ID, "output_stored", map[string]any{"index": o.Index, "size": size, "sha256": sum}))
	if errors.Is(err, ErrConflict) {
		if derr := g.storage.Delete(sctx, key); derr != nil {
			g.log.Warn("gateway: discard the output of a changed job", "job", j.ID, "key", key, "err", derr)
		}
		o.StorageKey, o.Size, o.SHA256, o.StoredAt = "", 0, "", time.Time{}
		g.log.Info("gateway: output discarded: the job changed while it was downloaded", "job", j.ID, "index", o.Index)
		return err
	}
	if err == nil {
		g.metrics.storedBytes.Add(float64(size))
	}
	return err
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
