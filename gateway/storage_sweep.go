package gateway

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Orphan temporary files: a process killed during a Put leaves its
// ".tmp-*" file behind. At start the gateway sweeps those older than
// TempSweepAge: a running write keeps its file's modification time fresh
// (every chunk written touches it), and a write stalled that long has lost
// its lease anyway.

// TempSweeper is implemented by storages that can remove abandoned
// temporary files (FileStorage).
type TempSweeper interface {
	// SweepTemp removes temporary files last modified before before and
	// returns how many it removed.
	SweepTemp(ctx context.Context, before time.Time) (int, error)
}

// SweepTemp implements TempSweeper.
func (s *FileStorage) SweepTemp(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == s.root {
				return err
			}
			return nil // a folder removed meanwhile: skip it
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.ModTime().Before(before) {
			return nil
		}
		if os.Remove(p) == nil {
			n++
		}
		return nil
	})
	return n, err
}

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
