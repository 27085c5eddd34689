package gateway

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/hourglasshq/hourglass/gateway/job"
)

// dispatch runs the job steps: the lease pool over the jobs table, at
// most cfg.Workers at once.
func (g *Gateway) dispatch(ctx context.Context) {
	defer close(g.dispatchDone)
	runPool(ctx, g, leasePool[*Job]{
		name: "jobs", size: g.cfg.Workers, wake: g.wake, inFlight: &g.work,
		claim: func(ctx context.Context, owner string, now time.Time, n int) ([]*Job, error) {
			return g.store.ClaimJobs(ctx, owner, now, now.Add(g.cfg.LeaseDuration), n)
		},
		nextDue: g.store.NextDue,
		run:     g.run,
	})
}

// run performs the step a claimed job is due for, holding its lease with a
// heartbeat. Every step ends by saving the job with the lease released and
// its next due time set; if the job changed meanwhile (a webhook, a client
// cancel) the save fails with ErrConflict and the step is dropped.
func (g *Gateway) run(j *Job) {
	ctx, cancel := context.WithCancel(g.workCtx)
	defer cancel()
	id, owner := j.ID, j.LeaseOwner // the step clears j's lease fields
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		g.heartbeat(ctx, cancel, id, owner)
	}()
	defer func() { cancel(); <-hbDone }()

	var err error
	switch {
	case j.Status == StatusPending:
		err = g.submit(ctx, j)
	case j.Status == StatusCreating:
		if h, held := g.waitHold(ctx, j.ID); h != nil {
			// This process holds the create's answer: record it.
			err = g.runHeld(ctx, j, h)
			break
		} else if held {
			err = ctx.Err() // still held (the saver has it): leave the job as it is
			break
		}
		// The holder of the create died or lost its lease mid-create: the
		// create may have reached Magic Hour. Never send it again.
		err = g.finishUnknown(ctx, j, "the gateway stopped while the create request was in flight")
	case j.Status.Tracking():
		err = g.poll(ctx, j)
	case j.Status == StatusStoring:
		err = g.storeOutputs(ctx, j)
	default:
		err = g.persist(ctx)(j.Park(g.now()))
	}
	if err != nil {
		lvl := "error"
		if errors.Is(err, ErrConflict) {
			lvl = "debug"
		}
		if lvl == "error" && ctx.Err() == nil {
			g.log.Error("gateway: job step", "job", j.ID, "status", j.Status, "err", err)
		} else {
			g.log.Debug("gateway: job step dropped", "job", j.ID, "status", j.Status, "err", err)
		}
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer rcancel()
		if err := g.store.ReleaseLease(rctx, id, owner); err != nil {
			g.log.Warn("gateway: release lease", "job", j.ID, "err", err)
		}
	}
}

// heartbeat extends the lease every third of LeaseDuration; when the lease
// is lost (another replica took the job) it cancels the step.
func (g *Gateway) heartbeat(ctx context.Context, cancel context.CancelFunc, id, owner string) {
	t := g.clock.NewTicker(g.cfg.LeaseDuration / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
			ok, err := g.store.ExtendLease(ctx, id, owner, g.now().Add(g.cfg.LeaseDuration))
			if err != nil && ctx.Err() == nil {
				g.log.Warn("gateway: extend lease", "job", id, "err", err)
				continue
			}
			if !ok && ctx.Err() == nil {
				g.log.Warn("gateway: lease lost; abandoning step", "job", id)
				cancel()
				return
			}
		}
	}
}

// save writes a step's result and releases the lease. Saving uses a context
// that outlives an interrupted step, so finished work is not lost.
func (g *Gateway) save(ctx context.Context, u JobUpdate) error {
	u.Job.UpdatedAt = g.now()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return g.writeJob(sctx, u)
}

// persist returns a function that saves a transition's change, so that
// g.persist(ctx)(j.Transition(...)) saves or returns the refusal as is.
func (g *Gateway) persist(ctx context.Context) func(job.Change, error) error {
	return func(c job.Change, err error) error {
		if err != nil {
			return err
		}
		return g.save(ctx, update(c))
	}
}

// update is the store's form of a transition's change.
func update(c job.Change) JobUpdate {
	return JobUpdate{Job: c.Job, Events: c.Events, Outputs: c.Outputs, CreditsDelta: c.CreditsDelta}
}

// backoff returns the delay before a step's attempt-th retry.
func (g *Gateway) backoff(attempt int) time.Duration {
	return backoff(g.cfg.RetryBase, g.cfg.RetryMax, attempt)
}

// expected returns how long a tool's job is expected to take upstream.
func (g *Gateway) expected(tool string) time.Duration {
	p50 := g.toolP50(tool)
	return time.Duration(float64(p50) * g.cfg.ExpectedFactor / g.cfg.Speed)
}

// pollInterval is the fallback polling interval of a job past its expected
// time: a quarter of its p50, growing 1.5× per poll, within the bounds.
func (g *Gateway) pollInterval(j *Job) time.Duration {
	base := float64(g.toolP50(j.Tool)) / g.cfg.Speed / 4
	d := time.Duration(base * math.Pow(1.5, float64(min(j.Polls, 12))))
	return min(max(d, g.cfg.MinPollInterval), g.cfg.MaxPollInterval)
}

// event builds a timeline event with data marshaled to JSON.
func (g *Gateway) event(typ string, data any) Event { return job.NewEvent(typ, data, g.now()) }
