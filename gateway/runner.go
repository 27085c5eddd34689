package gateway

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"time"

	"github.com/hourglasshq/hourglass/gateway/job"
)

// dispatch claims due jobs while there are free worker slots and runs each
// in its own goroutine (at most cfg.Workers at once). It sleeps until the
// next job is due, a local change nudges it, or IdlePoll passes (work made
// due by another replica).
func (g *Gateway) dispatch(ctx context.Context) {
	defer close(g.dispatchDone)
	claimFailures := 0
	slots := make(chan struct{}, g.cfg.Workers)
	for range g.cfg.Workers {
		slots <- struct{}{}
	}
	for {
		// Take one free slot (waiting if all are busy), then any others free.
		select {
		case <-ctx.Done():
			return
		case <-slots:
		}
		n := 1
	more:
		for n < g.cfg.Workers {
			select {
			case <-slots:
				n++
			default:
				break more
			}
		}
		owner := g.replica + "." + randomToken(5)
		now := g.now()
		jobs, err := g.store.ClaimJobs(ctx, owner, now, now.Add(g.cfg.LeaseDuration), n)
		if err != nil && ctx.Err() == nil {
			claimFailures++
			g.log.Error("gateway: claim jobs", "err", err, "consecutive_failures", claimFailures)
		} else if err == nil {
			claimFailures = 0
		}
		for _, j := range jobs {
			g.work.Add(1)
			go func() {
				defer g.work.Done()
				defer func() { slots <- struct{}{} }()
				g.run(j)
			}()
		}
		for range n - len(jobs) {
			slots <- struct{}{}
		}
		if claimFailures > 0 {
			// A failing claim (database down or full) backs off.
			if err := g.sleep(ctx, g.backoff(claimFailures)); err != nil {
				return
			}
			continue
		}
		if len(jobs) == n {
			continue // maybe more due; claim again as slots free up
		}
		if err := g.idle(ctx); err != nil {
			return
		}
	}
}

// idle waits until the next job may be due, a nudge, or IdlePoll.
func (g *Gateway) idle(ctx context.Context) error {
	wait := g.cfg.IdlePoll
	if next, ok, err := g.store.NextDue(ctx); err == nil && ok {
		if d := next.Sub(g.now()); d < wait {
			wait = max(d, 5*time.Millisecond)
		}
	}
	t := g.clock.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-g.wake:
	case <-t.Chan():
	}
	return nil
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
		if h := g.takeHold(j.ID); h != nil {
			// This process holds the create's answer: record it.
			err = g.runHeld(ctx, j, h)
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
	g.prepare(sctx, &u)
	err := g.store.UpdateJob(sctx, u)
	if err == nil && len(u.Callbacks) > 0 {
		g.nudgeCallbacks()
	}
	return err
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

// backoff returns the delay before the attempt-th retry, with jitter.
func (g *Gateway) backoff(attempt int) time.Duration {
	d := float64(g.cfg.RetryBase) * math.Pow(2, float64(min(attempt, 30)-1))
	d = min(d, float64(g.cfg.RetryMax))
	return time.Duration(d * (0.8 + 0.4*rand.Float64()))
}

// expected returns how long a tool's job is expected to take upstream.
func (g *Gateway) expected(tool string) time.Duration {
	p50 := toolP50(tool)
	return time.Duration(float64(p50) * g.cfg.ExpectedFactor / g.cfg.Speed)
}

// pollInterval is the fallback polling interval of a job past its expected
// time: a quarter of its p50, growing 1.5× per poll, within the bounds.
func (g *Gateway) pollInterval(j *Job) time.Duration {
	base := float64(toolP50(j.Tool)) / g.cfg.Speed / 4
	d := time.Duration(base * math.Pow(1.5, float64(min(j.Polls, 12))))
	return min(max(d, g.cfg.MinPollInterval), g.cfg.MaxPollInterval)
}

// event builds a timeline event with data marshaled to JSON.
func (g *Gateway) event(typ string, data any) Event { return job.NewEvent(typ, data, g.now()) }
