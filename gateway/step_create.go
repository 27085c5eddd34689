package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hourglasshq/hourglass/gateway/job"
	"github.com/hourglasshq/hourglass/magichour"
)

func (g *Gateway) toolP50(tool string) time.Duration {
	if op := g.lookup(tool); op != nil && op.P50 > 0 {
		return op.P50
	}
	return time.Minute
}

// submit sends the upstream create of a pending job, exactly once: the
// creating state (with the lease) is committed before the request leaves.
// Files uploaded to the gateway are sent to Magic Hour first, and the
// tenant's max_in_flight is checked in the same transaction as creating.
func (g *Gateway) submit(ctx context.Context, j *Job) error {
	params, _, err := g.resolveUploads(ctx, j.TenantID, g.lookup(j.Tool), j.Params)
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
