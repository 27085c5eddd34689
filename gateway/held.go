package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hourglasshq/hourglass/magichour"
)

// Held creates: a create reached Magic Hour (a billed project exists) but
// saving its upstream id failed (a full disk, a database outage). The id
// is then held in memory and in the create journal (journal.go), and the
// save is retried with backoff while the step's lease heartbeat keeps
// running, logging at ERROR with the job id and the upstream id on every
// attempt until it is saved. Meanwhile /readyz answers 503 and the webhook
// inbox is not cleaned up (the project's webhooks wait there for the id).
// When the step gives up (shutdown, lease lost) the hold stays: a
// background saver retries it, a later claim of the job records it instead
// of marking it create_outcome_unknown, and after a restart the next
// process replays the journal.

// holds is the process's set of held creates, by job id.
type holds struct {
	mu      sync.Mutex
	m       map[string]*heldCreate
	journal *createJournal // nil: memory only (no CreateJournalDir)
}

// openHolds opens the journal (when configured) and holds what it replays.
func (g *Gateway) openHolds() error {
	g.held.m = map[string]*heldCreate{}
	if g.cfg.CreateJournalDir == "" {
		return nil
	}
	j, recs, err := openJournal(g.cfg.CreateJournalDir)
	if err != nil {
		return err
	}
	g.held.journal = j
	for _, r := range recs {
		g.log.Error("gateway: create journal: replaying a create whose upstream id was not saved", "job", r.JobID, "upstream_id", r.UpstreamID)
		g.held.m[r.JobID] = r
	}
	return nil
}

func (g *Gateway) closeHolds() {
	g.held.mu.Lock()
	j := g.held.journal
	g.held.journal = nil
	g.held.mu.Unlock()
	j.close()
}

// heldCount is how many creates are held unsaved.
func (g *Gateway) heldCount() int {
	g.held.mu.Lock()
	defer g.held.mu.Unlock()
	return len(g.held.m)
}

// addHold holds h (journal first, then memory).
func (g *Gateway) addHold(h *heldCreate) {
	if err := g.held.journal.add(h); err != nil {
		g.log.Error("gateway: create journal write failed; the upstream id is held in memory only", "job", h.JobID, "upstream_id", h.UpstreamID, "err", err)
	}
	g.held.mu.Lock()
	g.held.m[h.JobID] = h
	g.held.mu.Unlock()
}

// takeHold returns the hold of a job and marks it busy (a step saves it);
// nil when the job is not held or another step has it.
func (g *Gateway) takeHold(jobID string) *heldCreate {
	g.held.mu.Lock()
	defer g.held.mu.Unlock()
	h := g.held.m[jobID]
	if h == nil || h.busy {
		return nil
	}
	h.busy = true
	return h
}

// waitHold returns the hold of a job once no other step has it (the
// background saver may be making an attempt), and whether the job is held
// at all. A held job is never marked create_outcome_unknown: when ctx ends
// first it returns nil, true and the caller leaves the job as it is.
func (g *Gateway) waitHold(ctx context.Context, jobID string) (*heldCreate, bool) {
	for {
		g.held.mu.Lock()
		h := g.held.m[jobID]
		if h == nil {
			g.held.mu.Unlock()
			return nil, false
		}
		if !h.busy {
			h.busy = true
			g.held.mu.Unlock()
			return h, true
		}
		g.held.mu.Unlock()
		t := g.clock.NewTimer(max(g.cfg.RetryBase, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, true
		case <-t.Chan():
		}
	}
}

// dropHold forgets a saved (or no longer applicable) hold.
func (g *Gateway) dropHold(h *heldCreate) {
	g.held.mu.Lock()
	delete(g.held.m, h.JobID)
	j := g.held.journal
	g.held.mu.Unlock()
	if err := j.remove(h); err != nil {
		g.log.Warn("gateway: create journal: clear a saved record", "job", h.JobID, "err", err)
	}
}

func (g *Gateway) releaseHold(h *heldCreate) {
	g.held.mu.Lock()
	h.busy = false
	g.held.mu.Unlock()
}

// recordOrHold records a create's answer; when the save fails for another
// reason than the job having changed, it holds the upstream id and keeps
// retrying (saveHeld).
func (g *Gateway) recordOrHold(ctx context.Context, j *Job, res *magichour.CreateResponse, at time.Time) error {
	orig := *j
	err := g.recordCreated(ctx, j, res, at)
	if err == nil || errors.Is(err, ErrConflict) {
		return err
	}
	h := &heldCreate{JobID: j.ID, UpstreamID: res.ID, Credits: res.CreditsCharged, At: at, busy: true}
	g.addHold(h)
	*j = orig
	return g.saveHeld(ctx, j, h, err)
}

// saveHeld retries saving a held create until it is saved, the job turns
// out to have moved on, or ctx ends (the hold then stays, not busy). first
// is the failure that made the hold, logged as attempt 1.
func (g *Gateway) saveHeld(ctx context.Context, j *Job, h *heldCreate, first error) error {
	res := &magichour.CreateResponse{ID: h.UpstreamID, CreditsCharged: h.Credits}
	err := first
	for {
		if err != nil {
			h.attempts++
			g.log.Error("gateway: created on Magic Hour but saving the upstream id failed; holding it and retrying",
				"job", h.JobID, "upstream_id", h.UpstreamID, "attempt", h.attempts, "err", err)
			t := g.clock.NewTimer(g.backoff(h.attempts))
			select {
			case <-ctx.Done():
				t.Stop()
				g.releaseHold(h)
				return ctx.Err()
			case <-t.Chan():
			}
			cur, rerr := g.store.Job(context.WithoutCancel(ctx), "", h.JobID)
			switch {
			case errors.Is(rerr, ErrNotFound):
				g.log.Error("gateway: held create's job is gone", "job", h.JobID, "upstream_id", h.UpstreamID)
				g.dropHold(h)
				return rerr
			case rerr != nil:
				err = rerr
				continue
			}
			*j = *cur
		}
		if j.UpstreamID == h.UpstreamID {
			g.log.Info("gateway: held create saved", "job", h.JobID, "upstream_id", h.UpstreamID)
			g.dropHold(h)
			return nil
		}
		if j.Status != StatusCreating && j.Status != StatusCreateOutcomeUnknown {
			g.log.Error("gateway: created upstream but the job moved on", "job", j.ID, "status", j.Status, "upstream_id", h.UpstreamID)
			g.dropHold(h)
			return ErrConflict
		}
		j.ReleaseLease()
		err = g.recordCreated(ctx, j, res, h.At)
		if err == nil {
			g.log.Info("gateway: held create saved", "job", h.JobID, "upstream_id", h.UpstreamID, "failed_attempts", h.attempts)
			g.dropHold(h)
			return nil
		}
	}
}

// runHeld is the step of a claimed job this process holds a create for:
// record it instead of marking the job create_outcome_unknown.
func (g *Gateway) runHeld(ctx context.Context, j *Job, h *heldCreate) error {
	return g.saveHeld(ctx, j, h, nil)
}

// heldSaver retries holds no step is working on (replayed from the journal,
// or left by a step that ended), every IdlePoll or so.
func (g *Gateway) heldSaver(ctx context.Context) {
	t := g.clock.NewTicker(max(g.cfg.IdlePoll, g.cfg.RetryBase))
	defer t.Stop()
	for {
		g.held.mu.Lock()
		var ids []string
		for id, h := range g.held.m {
			if !h.busy {
				ids = append(ids, id)
			}
		}
		g.held.mu.Unlock()
		for _, id := range ids {
			h := g.takeHold(id)
			if h == nil {
				continue
			}
			j, err := g.store.Job(ctx, "", id)
			if err != nil {
				if errors.Is(err, ErrNotFound) {
					g.dropHold(h)
				} else {
					g.releaseHold(h)
				}
				continue
			}
			// One attempt per tick: a failure releases the hold for the next.
			sctx, cancel := context.WithCancel(ctx)
			cancel() // saveHeld returns after its first failed attempt
			_ = g.saveHeld(sctx, j, h, nil)
			if ctx.Err() != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}
