package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// GET /api/listen streams, as Server-Sent Events, every Magic Hour webhook
// the gateway receives and every tenant callback it produces, so that
// `hourglass listen` can replay them, re-signed, to a developer's laptop
// (Magic Hour only sends webhooks to public URLs). A tenant key sees the
// events of its own jobs; the admin key sees all of them, including
// webhooks for projects no job knows (yet).
//
// Events:
//
//	event: ready     data: {"scope": "admin" | "tenant", "tenant_id": ...}
//	event: webhook   data: {"job_id", "tenant_id", "upstream_id", "type", "body"}
//	event: callback  data: {"job_id", "tenant_id", "type", "body"}
//
// body is the delivery's JSON exactly as received from Magic Hour (webhook)
// or as POSTed to the callback URL (callback). Events are live only: none
// are stored for a listener that connects later, and a listener too slow
// to keep up (listenBuffer events behind) loses events, counted in a
// "dropped" field of the next one. A callback event is published when the
// status change that notifies is prepared, for jobs with or without a
// callback URL.

// listenBuffer is how many events a listener may be behind.
const listenBuffer = 256

// listenEvent is one event for listeners; tenant scopes it.
type listenEvent struct {
	Kind       string          `json:"-"`
	JobID      string          `json:"job_id,omitempty"`
	TenantID   string          `json:"tenant_id,omitempty"`
	UpstreamID string          `json:"upstream_id,omitempty"`
	Type       string          `json:"type"`
	Body       json.RawMessage `json:"body"`
	At         time.Time       `json:"at"`
	Dropped    int64           `json:"dropped,omitempty"`
}

type listener struct {
	tenant  string // "" for the admin: every event
	ch      chan listenEvent
	dropped atomic.Int64
}

// listenHub fans events out to the connected listeners. The zero value is
// ready to use.
type listenHub struct {
	mu        sync.Mutex
	listeners map[*listener]struct{}
	n         atomic.Int32
}

// active reports whether anyone listens, so that callback bodies are only
// built for listeners when someone will read them.
func (h *listenHub) active() bool { return h.n.Load() > 0 }

func (h *listenHub) add(tenant string) *listener {
	l := &listener{tenant: tenant, ch: make(chan listenEvent, listenBuffer)}
	h.mu.Lock()
	if h.listeners == nil {
		h.listeners = map[*listener]struct{}{}
	}
	h.listeners[l] = struct{}{}
	h.mu.Unlock()
	h.n.Add(1)
	return l
}

func (h *listenHub) remove(l *listener) {
	h.mu.Lock()
	delete(h.listeners, l)
	h.mu.Unlock()
	h.n.Add(-1)
}

// publish hands ev to every listener allowed to see it, never blocking.
func (h *listenHub) publish(ev listenEvent) {
	if !h.active() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for l := range h.listeners {
		if l.tenant != "" && l.tenant != ev.TenantID {
			continue
		}
		select {
		case l.ch <- ev:
		default:
			l.dropped.Add(1)
		}
	}
}

// listenWebhook publishes a verified Magic Hour delivery; j is the job it
// is about, nil when none is known (then only the admin sees it).
func (g *Gateway) listenWebhook(j *Job, upstreamID, typ string, body []byte) {
	if !g.listen.active() {
		return
	}
	ev := listenEvent{Kind: "webhook", UpstreamID: upstreamID, Type: typ, Body: append(json.RawMessage(nil), body...), At: g.now()}
	if j != nil {
		ev.JobID, ev.TenantID = j.ID, j.TenantID
	}
	g.listen.publish(ev)
}

// listenCallback publishes a tenant callback body.
func (g *Gateway) listenCallback(j *Job, typ string, body []byte) {
	g.listen.publish(listenEvent{Kind: "callback", JobID: j.ID, TenantID: j.TenantID, Type: typ, Body: body, At: g.now()})
}

func (g *Gateway) handleListen(w http.ResponseWriter, r *http.Request, c caller) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "streaming unsupported", nil)
		return
	}
	l := g.listen.add(c.scope())
	defer g.listen.remove(l)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ready := map[string]any{"scope": "admin"}
	if c.Tenant != nil {
		ready = map[string]any{"scope": "tenant", "tenant_id": c.Tenant.ID}
	}
	b, _ := json.Marshal(ready)
	fmt.Fprintf(w, "event: ready\ndata: %s\n\n", b)
	flusher.Flush()
	g.log.Info("gateway: listener connected", "scope", ready["scope"], "remote", r.RemoteAddr)
	keepAlive := g.clock.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	var seq int64
	for {
		select {
		case <-r.Context().Done():
			return
		case <-g.workCtx.Done():
			return
		case <-keepAlive.Chan():
			fmt.Fprint(w, ": keep-alive\n\n")
			flusher.Flush()
		case ev := <-l.ch:
			seq++
			ev.Dropped = l.dropped.Swap(0)
			data, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", seq, ev.Kind, data); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}
