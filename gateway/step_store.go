package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/magichour"
)

func (g *Gateway) storeOutputs(ctx context.Context, j *Job) error {
	outs, err := g.store.Outputs(ctx, j.ID)
	if err != nil {
		return err
	}
	// The last output's row is saved with the stored state itself (one
	// write transaction less per job), unless the upstream project is
	// deleted in between: then every output is committed first.
	last := -1
	for i := range outs {
		if outs[i].StoredAt.IsZero() {
			last = i
		}
	}
	deferred := -1
	refreshed := false
	var failure error
	for i := range outs {
		if !outs[i].StoredAt.IsZero() {
			continue
		}
		commit := i != last || j.DeleteUpstream
		if !commit {
			deferred = i
		}
		if err := g.storeOne(ctx, j, outs, i, &refreshed, commit); err != nil {
			if errors.Is(err, ErrConflict) {
				return err // the job changed (deleted, ...): its file is discarded
			}
			failure = fmt.Errorf("output %d: %w", i, err)
			break
		}
	}
	now := g.now()
	if failure != nil {
		deferred = -1 // the failing output is the last one: nothing is held back
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
	c, err := j.Stored(now, len(outs), evs...)
	if err != nil {
		return err
	}
	u := update(c)
	if deferred >= 0 {
		o := outs[deferred]
		u.Outputs = outs
		u.Events = append([]Event{g.event("output_stored", map[string]any{"index": o.Index, "size": o.Size, "sha256": o.SHA256})}, u.Events...)
	}
	err = g.save(ctx, u)
	if err == nil && deferred >= 0 {
		g.metrics.storedBytes.Add(float64(outs[deferred].Size))
	}
	if errors.Is(err, ErrConflict) && deferred >= 0 {
		// Deleted (or changed) meanwhile: the held-back output goes too.
		g.discardOutput(ctx, j, outs[deferred].StorageKey)
	}
	return err
}

// discardOutput deletes the file of an output whose commit was refused.
func (g *Gateway) discardOutput(ctx context.Context, j *Job, key string) {
	if err := g.storage.Delete(context.WithoutCancel(ctx), key); err != nil {
		g.log.Warn("gateway: discard the output of a changed job", "job", j.ID, "key", key, "err", err)
	}
	g.log.Info("gateway: output discarded: the job changed while it was downloaded", "job", j.ID, "key", key)
}

// errExpired marks a download URL the storage host refused (expired).
var errExpired = errors.New("download URL expired or refused")

func (g *Gateway) storeOne(ctx context.Context, j *Job, outs []Output, i int, refreshed *bool, commit bool) error {
	for {
		o := &outs[i]
		if !*refreshed && !o.ExpiresAt.IsZero() && o.ExpiresAt.Before(g.now().Add(5*time.Second)) {
			if err := g.refreshURLs(ctx, j, outs); err != nil {
				return err
			}
			*refreshed = true
		}
		err := g.download(ctx, j, o, commit)
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

// download streams one output to storage and verifies its size; with
// commit it records it (else the caller saves it with the job).
func (g *Gateway) download(ctx context.Context, j *Job, o *Output, commit bool) error {
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
	if !commit {
		return nil
	}
	sctx := context.WithoutCancel(ctx)
	// The commit checks that the job is still the one this step claimed
	// (storing, same version): a job deleted (or otherwise changed) during
	// the download does not get the output; its file is discarded.
	err = g.store.CommitOutput(sctx, j, *o, g.event2(j.ID, "output_stored", map[string]any{"index": o.Index, "size": size, "sha256": sum}))
	if errors.Is(err, ErrConflict) {
		g.discardOutput(sctx, j, key)
		o.StorageKey, o.Size, o.SHA256, o.StoredAt = "", 0, "", time.Time{}
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
