package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

// timedReceiver records when each job's callback arrived.
type timedReceiver struct {
	mu  sync.Mutex
	at  map[string]time.Time
	srv *httptest.Server
}

func newTimedReceiver(t *testing.T) *timedReceiver {
	r := &timedReceiver{at: map[string]time.Time{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		now := time.Now()
		var body struct {
			Job struct {
				ID string `json:"id"`
			} `json:"job"`
		}
		raw, _ := io.ReadAll(req.Body)
		_ = json.Unmarshal(raw, &body)
		r.mu.Lock()
		if _, ok := r.at[body.Job.ID]; !ok {
			r.at[body.Job.ID] = now
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *timedReceiver) when(id string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.at[id]
	return t, ok
}

// Replicas wake each other with NOTIFY: replica A only serves the API and
// receives webhooks; replica B does the work and sends callbacks. Every
// idle poll is an hour, so without NOTIFY nothing would move: B would not
// see the submitted job, nor the webhook's storing, nor the callback, and
// A's event stream would not see B's events. It also measures the wake-up
// latency from A's webhook to B's callback.
func TestNotifyWakesOtherReplicas(t *testing.T) {
	t.Parallel()
	dbURL := postgresURL(t)
	h := newHarness(t, dbURL, hopts{workers: -1, cfg: func(c *gateway.Config) {
		c.CallbackWorkers, c.IdlePoll, c.SSEPoll = -1, time.Hour, time.Hour
		c.ExpectedFactor = 1000 // webhooks, not polls, move the jobs
	}})
	s2, err := gateway.OpenStore(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.cfg
	cfg.Store, cfg.Workers, cfg.CallbackWorkers = s2, 4, 4
	b, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(); s2.Close() })
	rcv := newTimedReceiver(t)

	// Let both dispatchers settle into their hour-long idle wait.
	waitFor(t, "two replicas with heartbeats", func() bool {
		var out struct{ Replicas []gateway.Replica }
		h.do("GET", "/api/admin/replicas", h.adminKey, nil, &out)
		return len(out.Replicas) == 2 && out.Replicas[0].Alive && out.Replicas[1].Alive
	})

	var lat []time.Duration
	for i := range 8 {
		req := map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", ""), "callback_url": rcv.srv.URL + "/cb"}
		var j jobView
		if code, raw := h.do("POST", "/api/jobs", h.tenantKey, req, &j); code != http.StatusAccepted {
			t.Fatalf("submit: %d %s", code, raw)
		}
		if i == 0 {
			// A's stream (SSEPoll an hour) sees B's events and the end.
			streamEnds(t, h, j.ID)
		}
		got := h.wait(j.ID)
		if got.Status != "stored" {
			t.Fatalf("%s: %s %+v", j.ID, got.Status, got.Error)
		}
		waitFor(t, "the callback", func() bool { _, ok := rcv.when(j.ID); return ok })
		cbAt, _ := rcv.when(j.ID)
		evs, err := h.store.Events(context.Background(), j.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var hookAt time.Time
		for _, e := range evs {
			if e.Type == "webhook" && strings.Contains(string(e.Data), "complete") {
				hookAt = e.CreatedAt
			}
		}
		if hookAt.IsZero() {
			t.Fatalf("%s: no completing webhook in %v", j.ID, h.events(j.ID))
		}
		lat = append(lat, cbAt.Sub(hookAt))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50 := lat[len(lat)/2]
	t.Logf("webhook on A -> callback from B: p50 %v, max %v", p50, lat[len(lat)-1])
	if p50 > 2*time.Second { // 100 ms on a quiet machine; generous for a loaded one
		t.Fatalf("wake-up p50 %v: NOTIFY is not waking the other replica", p50)
	}
}

// streamEnds reads a job's SSE stream from the harness until its end event.
func streamEnds(t *testing.T, h *harness, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/api/jobs/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+h.tenantKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "event: end" {
			return
		}
	}
	var j jobView
	h.do("GET", "/api/jobs/"+id, h.tenantKey, nil, &j)
	t.Fatalf("stream of %s ended without an end event: %v (job %s, events %v)", id, sc.Err(), j.Status, h.events(id))
}

// The upstream rate limit is shared: three replicas at 20/s (burst 5)
// send at most 20 calls per second plus the burst between them.
func TestSharedRateLimit(t *testing.T) {
	t.Parallel()
	dbURL := postgresURL(t)
	const rps, burst = 20, 5
	h := newHarness(t, dbURL, hopts{workers: 4, cfg: func(c *gateway.Config) {
		c.UpstreamRPS, c.UpstreamBurst = rps, burst
	}})
	for range 2 {
		s, err := gateway.OpenStore(context.Background(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		cfg := h.cfg
		cfg.Store = s
		g, err := gateway.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close(); s.Close() })
	}
	start := time.Now()
	var ids []string
	for range 40 {
		ids = append(ids, h.submit("ai-image-generator", "", "").ID)
	}
	for _, id := range ids {
		if j := h.wait(id); j.Status != "stored" {
			t.Fatalf("%s: %s", id, j.Status)
		}
	}
	elapsed := time.Since(start)
	creates := h.emu.Emulator.Stats().Creates
	if creates != len(ids) {
		t.Fatalf("creates = %d", creates)
	}
	// 40 creates (plus any polls) at 20/s with a burst of 5 take at least
	// (40-5)/20 s; three independent buckets would allow a third of it.
	if min := time.Duration(float64(len(ids)-burst) / rps * float64(time.Second)); elapsed < min {
		t.Fatalf("40 jobs through 3 replicas in %v: faster than the shared limit allows (%v)", elapsed, min)
	}
}
