package gateway

import (
	"context"

	"github.com/hourglasshq/hourglass/gateway/storage"
)

// Orphan temporary files: a process killed during a Put leaves its
// ".tmp-*" file behind. At start the gateway sweeps those older than
// TempSweepAge: a running write keeps its file's modification time fresh
// (every chunk written touches it), and a write stalled that long has lost
// its lease anyway.

// TempSweeper is implemented by storages that can remove abandoned
// temporary files (FileStorage); see storage.TempSweeper.
type TempSweeper = storage.TempSweeper

// sweepTemp is the start-up sweep (a background goroutine of New).
func (g *Gateway) sweepTemp(ctx context.Context) {
	ts, ok := g.storage.(TempSweeper)
	if !ok || g.cfg.TempSweepAge < 0 {
		return
	}
	n, err := ts.SweepTemp(ctx, g.now().Add(-g.cfg.TempSweepAge))
	switch {
	case err != nil && ctx.Err() == nil:
		g.log.Warn("gateway: sweep orphan temporary files", "err", err)
	case n > 0:
		g.log.Info("gateway: removed orphan temporary files of interrupted writes", "files", n, "older_than", g.cfg.TempSweepAge.String())
	}
}
