package gateway

import "context"

// maintain is the gateway's maintenance unit, apart from the worker pools:
// every CleanupInterval it deletes webhook inbox entries past InboxTTL,
// runs the periodic clean-ups (uploads, temp files), and deletes old
// events, callback rows and webhook dedupe rows past Retention, on one
// replica at a time (cluster.leadMaintenance).
func (g *Gateway) maintain(ctx context.Context) {
	t := g.clock.NewTicker(g.cfg.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
		if !g.cluster.leadMaintenance(ctx) {
			continue
		}
		if g.heldCount() > 0 {
			// A held create's webhooks wait in the inbox for its id.
			g.log.Warn("gateway: webhook inbox cleanup postponed while creates are held unsaved", "held", g.heldCount())
		} else if n, err := g.store.CleanupInbox(ctx, g.now().Add(-g.cfg.InboxTTL)); err != nil && ctx.Err() == nil {
			g.log.Warn("gateway: webhook inbox cleanup", "err", err)
		} else if n > 0 {
			g.log.Info("gateway: webhook inbox cleanup (deliveries for projects no job recorded)", "rows_deleted", n)
		}
		g.periodicCleanup(ctx)
		if g.cfg.Retention <= 0 {
			continue
		}
		n, err := g.store.Cleanup(ctx, g.now().Add(-g.cfg.Retention))
		if err != nil && ctx.Err() == nil {
			g.log.Warn("gateway: retention cleanup", "err", err)
			continue
		}
		if n > 0 {
			g.log.Info("gateway: retention cleanup", "rows_deleted", n, "older_than", g.cfg.Retention.String())
		}
	}
}
