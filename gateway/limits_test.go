package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

// A create whose estimate exceeds the remaining budget is refused with
// 402 before anything is sent upstream; the reservation is corrected to
// what Magic Hour charged.
func TestBudgetRefusesByEstimate(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		p := params(t, "ai-image-generator", "")
		raw, _ := json.Marshal(p)
		est := gateway.EstimateCredits("ai-image-generator", raw)
		if est <= 0 {
			t.Fatalf("estimate %d", est)
		}
		key := h.newTenant(map[string]any{"name": "budgeted", "credit_budget": 2*est - 1})
		var j jobView
		if code, raw := h.do("POST", "/api/jobs", key, map[string]any{"tool": "ai-image-generator", "params": p}, &j); code != http.StatusAccepted {
			t.Fatalf("first job: %d %s", code, raw)
		}
		code, body := h.do("POST", "/api/jobs", key, map[string]any{"tool": "ai-image-generator", "params": p}, nil)
		if code != http.StatusPaymentRequired || !strings.Contains(string(body), "budget") {
			t.Fatalf("second job: %d %s", code, body)
		}
		// The drop-in route too.
		if code, body := h.do("POST", "/v1/ai-image-generator", key, p, nil); code != http.StatusPaymentRequired {
			t.Fatalf("drop-in over budget: %d %s", code, body)
		}
		if got := h.waitAs(key, j.ID); got.Status != "stored" {
			t.Fatalf("first job: %s", got.Status)
		}
		if n := h.emu.Emulator.Stats().Creates; n != 1 {
			t.Fatalf("upstream creates = %d, want 1", n)
		}
		var ts struct {
			Tenants []struct {
				Name        string `json:"name"`
				CreditsUsed int64  `json:"credits_used"`
			} `json:"tenants"`
		}
		h.do("GET", "/api/admin/tenants", h.adminKey, nil, &ts)
		for _, tn := range ts.Tenants {
			if tn.Name == "budgeted" && tn.CreditsUsed != est {
				t.Fatalf("credits used %d, want %d", tn.CreditsUsed, est)
			}
		}
	})
}

// Jobs beyond a tenant's max_in_flight wait as pending and all finish;
// never more than the limit are upstream at once.
func TestMaxInFlightQueuesLocally(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		// Jobs last about four seconds (upscaler p50 22 s at 5x), so all six
		// are submitted while the first two are still upstream, however
		// loaded the machine is.
		h := newHarness(t, dbURL, hopts{speed: 5, workers: 6})
		key := h.newTenant(map[string]any{"name": "narrow", "max_in_flight": 2})
		var ids []string
		for range 6 {
			var j jobView
			if code, raw := h.do("POST", "/api/jobs", key, map[string]any{"tool": "ai-image-upscaler", "params": params(t, "ai-image-upscaler", "")}, &j); code != http.StatusAccepted {
				t.Fatalf("submit: %d %s", code, raw)
			}
			ids = append(ids, j.ID)
		}
		ctx := context.Background()
		maxSeen := 0
		deadline := time.Now().Add(2 * time.Minute)
		for {
			// One SELECT: a consistent snapshot (reading the jobs one by one
			// could count a job that finished before another started).
			jobs, err := h.store.ListJobs(ctx, gateway.JobFilter{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			inFlight, done := 0, 0
			for _, j := range jobs {
				switch j.Status {
				case gateway.StatusCreating, gateway.StatusSubmitted, gateway.StatusQueued, gateway.StatusRendering:
					inFlight++
				}
				if j.Status.Terminal() {
					done++
				}
			}
			maxSeen = max(maxSeen, inFlight)
			if done == len(ids) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d jobs finished", done, len(ids))
			}
			time.Sleep(2 * time.Millisecond)
		}
		if maxSeen > 2 {
			t.Fatalf("%d jobs in flight at once, limit 2", maxSeen)
		}
		queued := 0
		for _, id := range ids {
			var j jobView
			h.do("GET", "/api/jobs/"+id, key, nil, &j)
			if j.Status != "stored" {
				t.Fatalf("job %s: %s", id, j.Status)
			}
			queued += count(h.events(id), "queued_locally")
		}
		if queued == 0 {
			t.Fatal("no job was queued locally")
		}
	})
}

// The upstream rate limiter spaces calls to Magic Hour.
func TestUpstreamRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sqlite://"+t.TempDir()+"/r.db", hopts{workers: 8, cfg: func(c *gateway.Config) {
		c.UpstreamRPS, c.UpstreamBurst = 20, 1
	}})
	start := time.Now()
	for range 6 {
		h.submit("ai-image-generator", "", "")
	}
	waitFor(t, "6 creates", func() bool { return h.emu.Emulator.Stats().Creates >= 6 })
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("6 creates at 20/s with burst 1 took %s", d)
	}
	// The emulator counts a create before the gateway has read its answer,
	// so wait for the gateway's own counter rather than reading it once.
	var code int
	var body []byte
	waitFor(t, "the gateway's metrics to count 6 creates", func() bool {
		code, body = h.do("GET", "/metrics", "", nil, nil)
		return code == 200 && strings.Contains(string(body), `hourglass_upstream_calls_total{route="POST /v1/ai-image-generator",status="200"} 6`)
	})
	if !strings.Contains(string(body), `hourglass_jobs{status=`) {
		t.Fatalf("metrics: %d\n%s", code, body)
	}
}

// delete_upstream_after_store deletes the Magic Hour project once every
// output is stored (per job, or by the tenant's default).
func TestDeleteUpstreamAfterStore(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		var j jobView
		req := map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", ""), "delete_upstream_after_store": true}
		if code, raw := h.do("POST", "/api/jobs", h.tenantKey, req, &j); code != http.StatusAccepted {
			t.Fatalf("submit: %d %s", code, raw)
		}
		got := h.wait(j.ID)
		if got.Status != "stored" || count(h.events(j.ID), "upstream_deleted") != 1 {
			t.Fatalf("%s %v", got.Status, h.events(j.ID))
		}
		h.checkOutputs(got)
		key := h.newTenant(map[string]any{"name": "tidy", "delete_upstream_after_store": true})
		var k jobView
		h.do("POST", "/api/jobs", key, map[string]any{"tool": "ai-voice-generator", "params": params(t, "ai-voice-generator", "")}, &k)
		if got := h.waitAs(key, k.ID); got.Status != "stored" || count(h.events(k.ID), "upstream_deleted") != 1 {
			t.Fatalf("tenant default: %s %v", got.Status, h.events(k.ID))
		}
		// A job of the default tenant without the option keeps its project.
		plain := h.wait(h.submit("ai-image-generator", "", "").ID)
		if count(h.events(plain.ID), "upstream_deleted") != 0 {
			t.Fatal("deleted upstream without the option")
		}
		st := h.emu.Emulator.Stats().Requests
		if st["DELETE /v1/image-projects/{id} 204"] != 1 || st["DELETE /v1/audio-projects/{id} 204"] != 1 {
			t.Fatalf("upstream deletes: %v", st)
		}
	})
}

// Retention deletes the events and webhook dedupe rows of finished jobs.
func TestRetentionCleanup(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		j := h.wait(h.submit("ai-image-generator", "", "").ID)
		pending := h.submitParams("ai-image-generator", params(t, "ai-image-generator", "")) // may still be running
		ctx := context.Background()
		if n, err := h.store.Cleanup(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("cleanup of nothing old: %d %v", n, err)
		}
		h.wait(pending.ID)
		n, err := h.store.Cleanup(ctx, time.Now().Add(time.Hour))
		if err != nil || n == 0 {
			t.Fatalf("cleanup: %d %v", n, err)
		}
		if evs := h.events(j.ID); len(evs) != 0 {
			t.Fatalf("events left: %v", evs)
		}
	})
}

// A job waiting for the upstream rate limiter is still pending, not
// creating: a process that stops there leaves it safe to send, and the
// next process sends it (no create_outcome_unknown for a create that never
// left).
func TestRateLimitWaitIsNotCreating(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{workers: 4, cfg: func(c *gateway.Config) {
			// One call now, the next in 1000 s: no second create can start
			// however slowly the test runs, so stopping interrupts none.
			c.UpstreamRPS, c.UpstreamBurst = 0.001, 1
			// A lease long enough that a late heartbeat on a loaded
			// machine never hands the in-flight create to another worker.
			c.LeaseDuration = 5 * time.Second
			c.ShutdownGrace = time.Millisecond
		}})
		var ids []string
		for range 3 {
			ids = append(ids, h.submit("ai-image-generator", "", "").ID)
		}
		waitFor(t, "the first create", func() bool { return h.emu.Emulator.Stats().Creates >= 1 })
		// The first create's answer is recorded and the others are
		// claimed: waiting for a token, not creating.
		waitFor(t, "one job created, the others claimed", func() bool {
			created := 0
			for _, id := range ids {
				j, err := h.store.Job(context.Background(), "", id)
				if err != nil || (j.LeaseOwner == "" && j.UpstreamID == "") {
					return false
				}
				if j.UpstreamID != "" {
					created++
				}
			}
			return created >= 1
		})
		for _, id := range ids {
			j, err := h.store.Job(context.Background(), "", id)
			if err != nil {
				t.Fatal(err)
			}
			if j.Status == gateway.StatusCreating {
				t.Fatalf("job %s is creating while it waits for the rate limiter", id)
			}
		}
		h.stop()
		h.cfg.UpstreamRPS, h.cfg.UpstreamBurst = 100, 10
		h.start()
		for _, id := range ids {
			if j := h.wait(id); j.Status != "stored" {
				t.Fatalf("job %s: %s %+v", id, j.Status, j.Error)
			}
		}
		if n := h.emu.Emulator.Stats().Creates; n != len(ids) {
			t.Fatalf("upstream creates = %d, want %d", n, len(ids))
		}
	})
}
