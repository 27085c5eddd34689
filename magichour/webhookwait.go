package magichour

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hourglasshq/hourglass/magichour/webhook"
)

// Defaults of NewWebhookWaiter.
const (
	// DefaultFallbackPoll is the smallest gap between the fallback polls of
	// WebhookWaiter.Wait.
	DefaultFallbackPoll = 60 * time.Second
	// DefaultRecentEvents is how many projects' latest events a
	// WebhookWaiter remembers for Wait calls that come after the event.
	DefaultRecentEvents = 10000
	// DefaultRecentEventsTTL is how long such an event is remembered.
	DefaultRecentEventsTTL = time.Hour
)

// WebhookWaiter waits for projects by listening to Magic Hour's webhooks
// instead of polling. Feed it every verified event, with Deliver or by
// mounting Handler on the webhook endpoint, and call Wait: it returns as
// soon as a terminal event (completed or errored) for the project arrives.
//
// Events that arrive before Wait is called are kept (the latest per
// project, up to WithRecentEvents entries for a limited time), so a fast
// job cannot be missed between create and Wait.
//
// Because Magic Hour sends no event for a canceled project and webhooks
// can be lost, Wait also polls, rarely: first after max(fallback,
// 2×expected), then every max(fallback, expected), where fallback is
// DefaultFallbackPoll unless WithFallbackPoll says otherwise.
//
// A WebhookWaiter is safe for concurrent use and starts no goroutines.
type WebhookWaiter struct {
	c        *Client
	fallback time.Duration
	maxKeep  int
	ttl      time.Duration
	now      func() time.Time

	mu      sync.Mutex
	recent  map[string]*recentEvent
	order   []string // ids in arrival order of their first event, for eviction
	waiters map[string]map[*waiterSlot]struct{}
}

type recentEvent struct {
	p  *Project
	at time.Time
}

// waiterSlot receives the events of one Wait call.
type waiterSlot struct {
	ch chan *Project // buffered; holds the latest undelivered project
}

// WebhookWaiterOption configures NewWebhookWaiter.
type WebhookWaiterOption func(*WebhookWaiter)

// WithFallbackPoll sets the smallest gap between fallback polls (default
// DefaultFallbackPoll, uncompressed: WithTimeScale applies). A negative
// value disables fallback polling: canceled projects and lost webhooks are
// then never noticed, so give Wait a context deadline.
func WithFallbackPoll(d time.Duration) WebhookWaiterOption {
	return func(w *WebhookWaiter) {
		if d != 0 {
			w.fallback = d
		}
	}
}

// WithRecentEvents bounds the memory of events that arrived before any
// Wait for their project: at most n projects (default DefaultRecentEvents),
// each for ttl (default DefaultRecentEventsTTL).
func WithRecentEvents(n int, ttl time.Duration) WebhookWaiterOption {
	return func(w *WebhookWaiter) {
		if n > 0 {
			w.maxKeep = n
		}
		if ttl > 0 {
			w.ttl = ttl
		}
	}
}

// NewWebhookWaiter returns a waiter that uses c for its fallback polls.
func NewWebhookWaiter(c *Client, opts ...WebhookWaiterOption) *WebhookWaiter {
	w := &WebhookWaiter{
		c:        c,
		fallback: DefaultFallbackPoll,
		maxKeep:  DefaultRecentEvents,
		ttl:      DefaultRecentEventsTTL,
		now:      time.Now,
		recent:   map[string]*recentEvent{},
		waiters:  map[string]map[*waiterSlot]struct{}{},
	}
	for _, o := range opts {
		if o != nil {
			o(w)
		}
	}
	return w
}

// Handler returns an http.Handler for the webhook endpoint: it verifies
// each delivery with secret (see webhook.NewHandler, whose options it
// takes) and passes the event to Deliver.
func (w *WebhookWaiter) Handler(secret string, opts ...webhook.HandlerOption) http.Handler {
	return webhook.NewHandler(secret, func(_ context.Context, e *webhook.Event) error {
		w.Deliver(e)
		return nil
	}, opts...)
}

// Deliver hands the waiter one verified webhook event. Events of unknown
// kinds or without a payload are ignored. Delivering the same event twice,
// or events out of order, is harmless: a terminal status is never replaced
// by a non-terminal one.
func (w *WebhookWaiter) Deliver(e *webhook.Event) {
	if e == nil || e.Payload.ID == "" {
		return
	}
	kind := Kind(e.Type.Kind())
	if !kind.Valid() {
		return
	}
	p := &Project{Kind: kind}
	if err := json.Unmarshal(e.Raw, p); err != nil || p.ID == "" {
		return
	}
	p.Kind = kind
	w.deliver(p)
}

func (w *WebhookWaiter) deliver(p *Project) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if old := w.recent[p.ID]; old != nil {
		if old.p.Status.Terminal() && !p.Status.Terminal() {
			return // a late "started" after the outcome
		}
		old.p, old.at = p, now
	} else {
		w.recent[p.ID] = &recentEvent{p: p, at: now}
		w.order = append(w.order, p.ID)
		w.evictLocked(now)
	}
	for s := range w.waiters[p.ID] {
		offer(s.ch, p)
	}
}

// offer puts p in a one-slot channel, replacing an undelivered older value.
func offer(ch chan *Project, p *Project) {
	for {
		select {
		case ch <- p:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// evictLocked drops expired entries and the oldest ones beyond maxKeep.
func (w *WebhookWaiter) evictLocked(now time.Time) {
	drop := 0
	for drop < len(w.order) {
		id := w.order[drop]
		ev := w.recent[id]
		if ev != nil && len(w.order)-drop <= w.maxKeep && now.Sub(ev.at) < w.ttl {
			break
		}
		delete(w.recent, id)
		drop++
	}
	if drop > 0 {
		w.order = append(w.order[:0:0], w.order[drop:]...)
	}
}

// Wait returns when a terminal event for project id arrives (or arrived
// already), or when a fallback poll finds the project terminal, with the
// same results as Client.Wait: the project and nil, a *JobError or a
// *CanceledError; or an error wrapping ctx.Err() when ctx ends first.
// WithTool or WithExpected set the expected duration that spaces the
// fallback polls; WithTimeScale compresses them; WithStatusCallback sees
// every status change, from events or polls.
func (w *WebhookWaiter) Wait(ctx context.Context, kind Kind, id string, opts ...WaitOption) (*Project, error) {
	if err := checkProjectArgs(kind, id); err != nil {
		return nil, err
	}
	cfg := newWaitConfig(kind, opts)
	slot := &waiterSlot{ch: make(chan *Project, 1)}
	w.mu.Lock()
	if w.waiters[id] == nil {
		w.waiters[id] = map[*waiterSlot]struct{}{}
	}
	w.waiters[id][slot] = struct{}{}
	if ev := w.recent[id]; ev != nil {
		offer(slot.ch, ev.p)
	}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.waiters[id], slot)
		if len(w.waiters[id]) == 0 {
			delete(w.waiters, id)
		}
		w.mu.Unlock()
	}()

	var (
		last     *Project
		lastStat Status
		timer    *time.Timer
		fire     <-chan time.Time
		failures int
	)
	seen := func(p *Project) bool {
		last = p
		if p.Status != lastStat {
			lastStat = p.Status
			if cfg.onStatus != nil {
				cfg.onStatus(p)
			}
		}
		return p.Status.Terminal()
	}
	if w.fallback > 0 {
		timer = time.NewTimer(cfg.scale(max(w.fallback, 2*cfg.expected)))
		defer timer.Stop()
		fire = timer.C
	}
	for {
		select {
		case <-ctx.Done():
			return last, waitCtxError(kind, id, last, ctx.Err())
		case p := <-slot.ch:
			if seen(p) {
				return p, p.Err()
			}
		case <-fire:
			p, err := w.c.GetProject(ctx, kind, id)
			switch {
			case err == nil:
				failures = 0
				if seen(p) {
					return p, p.Err()
				}
			case ctx.Err() != nil:
				return last, waitCtxError(kind, id, last, ctx.Err())
			case !isTransient(err):
				return last, fmt.Errorf("magichour: wait for %s project %s: %w", kind, id, err)
			default:
				failures++
				if failures >= cfg.transientMax {
					return last, fmt.Errorf("magichour: wait for %s project %s: %d fallback polls in a row failed: %w", kind, id, failures, err)
				}
			}
			timer.Reset(cfg.scale(max(w.fallback, cfg.expected)))
		}
	}
}
