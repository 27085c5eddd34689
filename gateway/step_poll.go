package gateway

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/hourglasshq/hourglass/gateway/job"
	"github.com/hourglasshq/hourglass/magichour"
	"github.com/hourglasshq/hourglass/magichour/webhook"
)

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
