package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Catalog is the catalog the gateway works with now: native submit, the
// drop-in routes, estimates, expected durations and the dashboard's forms
// read it. A refresh (Config.SpecRefresh) swaps it atomically; a job keeps
// working with whatever catalog is in use when each step runs.
func (g *Gateway) Catalog() *catalog.Catalog { return g.cat.Load() }

// SetCatalog puts c in use (nil is ignored).
func (g *Gateway) SetCatalog(c *catalog.Catalog) {
	if c != nil {
		g.cat.Store(c)
	}
}

// lookup is the operation named tool in the catalog in use, or nil.
func (g *Gateway) lookup(tool string) *catalog.Operation { return g.Catalog().Lookup(tool) }

// RefreshCatalog reads Config.SpecSource again and puts it in use. A spec
// that cannot be read or is refused (not JSON, not OpenAPI 3, missing
// operations) changes nothing: the last good catalog stays, the error is
// logged and returned, and hourglass_catalog_refreshes_total{result} counts
// every attempt.
func (g *Gateway) RefreshCatalog(ctx context.Context) error {
	src := g.cfg.SpecSource
	if src == "" {
		return fmt.Errorf("gateway: no spec source to refresh from")
	}
	c, err := catalog.Fetch(ctx, nil, src)
	if err != nil {
		g.catRefreshes.WithLabelValues("refused").Inc()
		g.log.Error("catalog refresh refused; the last good catalog stays in use", "source", src, "err", err,
			"in_use", g.Catalog().DateString())
		return fmt.Errorf("gateway: refresh the catalog from %s: %w", src, err)
	}
	g.SetCatalog(c)
	g.catRefreshes.WithLabelValues("ok").Inc()
	g.log.Info("catalog refreshed", "source", src, "date", c.DateString(), "operations", len(c.Ops))
	return nil
}

func newCatalogRefreshes(reg *prometheus.Registry) *prometheus.CounterVec {
	m := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hourglass_catalog_refreshes_total", Help: "Catalog refreshes from the spec source by result (ok, refused)."},
		[]string{"result"})
	reg.MustRegister(m)
	return m
}

// refreshCatalogLoop refreshes the catalog every SpecRefresh until ctx ends.
func (g *Gateway) refreshCatalogLoop(ctx context.Context) {
	t := g.clock.NewTicker(g.cfg.SpecRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
			rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			_ = g.RefreshCatalog(rctx) // logged and counted; the last good one stays
			cancel()
		}
	}
}
