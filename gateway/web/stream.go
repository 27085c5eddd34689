package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

// Both streams read the database on a timer (gateway SSEPoll, 500ms by
// default), never process memory, so a dashboard served by one replica
// sees the work of all of them. EventSource reconnects by itself and sends
// Last-Event-ID, from which the streams resume.

// overlap re-reads recent changes on every poll: replicas' clocks differ a
// little and a change committed late may carry an earlier updated_at.
const overlap = 3 * time.Second

type sse struct {
	w         http.ResponseWriter
	f         http.Flusher
	now       func() time.Time
	lastWrite time.Time
}

func startSSE(w http.ResponseWriter, now func() time.Time) (*sse, bool) {
	f, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return nil, false
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	f.Flush()
	return &sse{w: w, f: f, now: now, lastWrite: now()}, true
}

func (s *sse) send(id, event string, data any) {
	b, _ := json.Marshal(data)
	if id != "" {
		fmt.Fprintf(s.w, "id: %s\n", id)
	}
	fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, b)
	s.lastWrite = s.now()
}

func (s *sse) flush() {
	if s.now().Sub(s.lastWrite) > 15*time.Second {
		fmt.Fprint(s.w, ": keep-alive\n\n")
		s.lastWrite = s.now()
	}
	s.f.Flush()
}

type rowEvent struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Match  bool   `json:"match"`
	HTML   string `json:"html"`
}

// handleListStream streams the jobs of the list's filters that change:
// each as its rendered row; the page replaces rows it shows and counts new
// ones. The event id is the updated_at (Unix ms) reached.
func (d *Dashboard) handleListStream(w http.ResponseWriter, r *http.Request, u *user) {
	ctx := r.Context()
	_, jf, _ := d.parseFilter(r, u)
	cursor := d.gw.Now().Add(-overlap).UnixMilli()
	if v, err := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64); err == nil {
		cursor = v
	}
	if v, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		cursor = v
	}
	s, ok := startSSE(w, d.gw.Now)
	if !ok {
		return
	}
	names := d.tenantNames(ctx, u)
	type seen struct{ version, updated int64 }
	sent := map[string]seen{}
	tick := d.gw.Clock().NewTicker(d.poll)
	defer tick.Stop()
	for {
		jobs, err := d.gw.JobsChangedSince(ctx, gateway.JobFilter{TenantID: jf.TenantID, Tool: jf.Tool}, time.UnixMilli(cursor-overlap.Milliseconds()), 500)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("dashboard: list stream", "err", err)
			}
			return
		}
		now := d.gw.Now()
		maxU := cursor
		for _, j := range jobs {
			upd := j.UpdatedAt.UnixMilli()
			maxU = max(maxU, upd)
			if prev, ok := sent[j.ID]; ok && prev.version >= j.Version {
				continue
			}
			if _, known := names[j.TenantID]; !known && u.Admin {
				names = d.tenantNames(ctx, u)
			}
			sent[j.ID] = seen{j.Version, upd}
			html, err := d.fragment("row", makeRow(j, names, u.Admin, now))
			if err != nil {
				d.log.Error("dashboard: render row", "err", err)
				return
			}
			s.send("", "row", rowEvent{ID: j.ID, Status: string(j.Status), Match: jf.Status == "" || j.Status == jf.Status, HTML: html})
		}
		cursor = maxU
		for id, v := range sent {
			if v.updated < cursor-2*overlap.Milliseconds() {
				delete(sent, id)
			}
		}
		s.send(strconv.FormatInt(cursor, 10), "sync", map[string]int64{"at": cursor})
		s.flush()
		select {
		case <-ctx.Done():
			return
		case <-tick.Chan():
		}
	}
}

type jobEvent struct {
	Status   string            `json:"status"`
	Terminal bool              `json:"terminal"`
	Parts    map[string]string `json:"parts"`
}

// handleJobStream streams one job: its re-rendered summary and outputs on
// every change, and each new timeline entry; "end" once the job is
// finished and everything was sent.
func (d *Dashboard) handleJobStream(w http.ResponseWriter, r *http.Request, u *user) {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := d.gw.Store().Job(ctx, u.Scope(), id); err != nil {
		if errors.Is(err, gateway.ErrNotFound) {
			http.Error(w, "no such job", http.StatusNotFound)
			return
		}
		d.fail(w, r, err)
		return
	}
	var last int64
	if v, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64); err == nil {
		last = v
	}
	if v, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		last = v
	}
	s, ok := startSSE(w, d.gw.Now)
	if !ok {
		return
	}
	version := int64(-1)
	tick := d.gw.Clock().NewTicker(d.poll)
	defer tick.Stop()
	for {
		j, err := d.gw.Store().Job(ctx, u.Scope(), id)
		if err != nil {
			return
		}
		evs, err := d.gw.Store().Events(ctx, id, last, 200)
		if err != nil {
			return
		}
		if j.Version != version || len(evs) > 0 {
			version = j.Version
			dv, err := d.detail(ctx, u, id)
			if err != nil {
				return
			}
			parts := map[string]string{}
			for name, tmpl := range map[string]string{"job-summary": "summary", "job-outputs": "outputs"} {
				html, err := d.fragment(tmpl, dv)
				if err != nil {
					d.log.Error("dashboard: render", "err", err)
					return
				}
				parts[name] = html
			}
			s.send("", "job", jobEvent{Status: string(j.Status), Terminal: j.Status.Terminal(), Parts: parts})
		}
		for _, ev := range evs {
			html, err := d.fragment("event", describeEvent(ev))
			if err != nil {
				return
			}
			last = ev.ID
			s.send(strconv.FormatInt(ev.ID, 10), "timeline", map[string]string{"html": html})
		}
		if j.Status.Terminal() && len(evs) == 0 {
			s.send("", "end", map[string]string{"status": string(j.Status)})
			s.f.Flush()
			return
		}
		s.flush()
		if len(evs) == 200 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.Chan():
		}
	}
}
