package gateway

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// WriteProber is implemented by stores that can check that a write goes
// through (the SQL store: a one-row upsert), for /readyz: a database that
// answers reads but cannot take writes (a full disk) is not ready.
type WriteProber interface {
	ProbeWrite(ctx context.Context) error
}

// notReady returns why the gateway is not ready ("" when it is): the
// database unreachable or refusing writes, or creates held unsaved.
func (g *Gateway) notReady(ctx context.Context) string {
	if err := g.store.Ping(ctx); err != nil {
		return "database unreachable"
	}
	if p, ok := g.store.(WriteProber); ok {
		if err := p.ProbeWrite(ctx); err != nil {
			g.log.Error("gateway: readiness: database write probe failed", "err", err)
			return "the database does not accept writes: " + err.Error()
		}
	}
	if n := g.heldCount(); n > 0 {
		return fmt.Sprintf("%d created job(s) whose upstream id is not saved yet (see the ERROR log)", n)
	}
	return ""
}

// ProbeWrite implements WriteProber.
func (s *sqlStore) ProbeWrite(ctx context.Context) error {
	_, err := s.w.ExecContext(ctx, s.d.q("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"),
		"write_probe", strconv.FormatInt(time.Now().UnixMilli(), 10))
	return err
}

// sleep waits d on the gateway's clock, or until ctx ends.
func (g *Gateway) sleep(ctx context.Context, d time.Duration) error {
	t := g.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.Chan():
		return nil
	}
}
