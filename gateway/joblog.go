package gateway

import "context"

// writeJob saves a step's or a webhook's update (with the callbacks its
// status change owes) and logs, once, a job that ends stored or in error:
// every such change goes through here.
func (g *Gateway) writeJob(ctx context.Context, u JobUpdate) error {
	j := u.Job
	prev := j.SavedStatus()
	g.prepare(ctx, &u)
	if err := g.store.UpdateJob(ctx, u); err != nil {
		return err
	}
	if len(u.Callbacks) > 0 {
		g.nudgeCallbacks()
	}
	if j.Status != prev {
		switch j.Status {
		case StatusStored:
			g.log.Info("gateway: job stored", "job", j.ID, "tenant", j.TenantID, "tool", j.Tool, "credits", j.Credits)
		case StatusError:
			g.log.Info("gateway: job failed", "job", j.ID, "tenant", j.TenantID, "tool", j.Tool, "code", j.ErrorCode, "message", j.ErrorMessage)
		}
	}
	return nil
}
