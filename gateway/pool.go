package gateway

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// leasePool is the gateway's one worker loop, for job steps and callback
// deliveries alike: while it has free slots it claims due items with a
// lease (claim), runs each in its own goroutine (at most size at once),
// and otherwise sleeps until the next item may be due (nextDue), a local
// change wakes it, or IdlePoll passes (work made due by another replica).
// A failing claim (database down or full) backs off.
type leasePool[T any] struct {
	name    string // for logs: "jobs", "callbacks"
	size    int
	claim   func(ctx context.Context, owner string, now time.Time, n int) ([]T, error)
	nextDue func(ctx context.Context) (time.Time, bool, error)
	run     func(T)
	wake    <-chan struct{}
	// inFlight, when set, counts the runs (Close waits on it with a grace
	// period); otherwise the loop waits for its runs before returning.
	inFlight *sync.WaitGroup
}

// runPool runs p until ctx ends.
func runPool[T any](ctx context.Context, g *Gateway, p leasePool[T]) {
	slots := make(chan struct{}, p.size)
	for range p.size {
		slots <- struct{}{}
	}
	if p.inFlight == nil {
		defer func() {
			for range p.size {
				<-slots // every run has finished
			}
		}()
	}
	failures := 0
	for {
		// Take one free slot (waiting if all are busy), then any others free.
		select {
		case <-ctx.Done():
			return
		case <-slots:
		}
		n := 1
	more:
		for n < p.size {
			select {
			case <-slots:
				n++
			default:
				break more
			}
		}
		owner := g.replica + "." + p.name + "." + randomToken(4)
		items, err := p.claim(ctx, owner, g.now(), n)
		if err != nil && ctx.Err() == nil {
			failures++
			g.log.Error("gateway: claim "+p.name, "err", err, "consecutive_failures", failures)
		} else if err == nil {
			failures = 0
		}
		for _, it := range items {
			if p.inFlight != nil {
				p.inFlight.Add(1)
			}
			go func() {
				if p.inFlight != nil {
					defer p.inFlight.Done()
				}
				defer func() { slots <- struct{}{} }()
				p.run(it)
			}()
		}
		for range n - len(items) {
			slots <- struct{}{}
		}
		if failures > 0 {
			if err := g.sleep(ctx, backoff(g.cfg.RetryBase, g.cfg.RetryMax, failures)); err != nil {
				return
			}
			continue
		}
		if len(items) == n {
			continue // maybe more due; claim again as slots free up
		}
		wait := g.cfg.IdlePoll
		if next, ok, err := p.nextDue(ctx); err == nil && ok {
			wait = min(wait, max(next.Sub(g.now()), 5*time.Millisecond))
		}
		t := g.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.wake:
		case <-t.Chan():
		}
		t.Stop()
	}
}

// backoff is the delay before the attempt-th retry: base doubling per
// attempt up to max, with ±20% jitter. Steps, claims and callbacks use it
// with their own bounds.
func backoff(base, max time.Duration, attempt int) time.Duration {
	d := float64(base) * math.Pow(2, float64(min(attempt, 30)-1))
	d = min(d, float64(max))
	return time.Duration(d * (0.8 + 0.4*rand.Float64()))
}
