package gateway_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour/webhook"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Every create tool, of every kind, goes submit → stored with its outputs
// downloadable and verified.
func TestEveryToolIsStored(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		var ids []string
		kinds := map[catalog.Kind]int{}
		for _, op := range catalog.Creates() {
			ids = append(ids, h.submit(op.Name, "", "").ID)
			kinds[op.Kind]++
		}
		if len(kinds) != 3 {
			t.Fatalf("kinds covered: %v", kinds)
		}
		for _, id := range ids {
			j := h.wait(id)
			if j.Status != "stored" {
				t.Fatalf("job %s (%s): %s %+v", id, j.Tool, j.Status, j.Error)
			}
			h.checkOutputs(j)
		}
		if got := h.emu.Emulator.Stats().Creates; got != len(ids) {
			t.Fatalf("upstream creates = %d, want %d", got, len(ids))
		}
		// Range requests are served from storage.
		var j jobView
		h.do("GET", "/api/jobs/"+ids[0], h.tenantKey, nil, &j)
		req, _ := http.NewRequest("GET", j.Outputs[0].URL, nil)
		req.Header.Set("Authorization", "Bearer "+h.tenantKey)
		req.Header.Set("Range", "bytes=0-9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || resp.ContentLength != 10 {
			t.Fatalf("range: %d, length %d", resp.StatusCode, resp.ContentLength)
		}
	})
}

// With webhooks arriving and the fallback poll far away, a job is tracked
// by webhooks alone: no poll.
func TestWebhookFirst(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{expect: 50})
		j := h.wait(h.submit("text-to-video", "", "").ID)
		if j.Status != "stored" {
			t.Fatalf("status %s %+v", j.Status, j.Error)
		}
		if j.Polls != 0 {
			t.Fatalf("polls = %d, want 0 (webhook first)", j.Polls)
		}
		if evs := h.events(j.ID); count(evs, "webhook") == 0 {
			t.Fatalf("no webhook in the timeline: %v", evs)
		}
		// Each webhook event records its lag, for the dashboard's chart.
		evs, err := h.store.Events(context.Background(), j.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == "webhook" && !strings.Contains(string(e.Data), `"lag_ms":`) {
				t.Fatalf("webhook event without lag_ms: %s", e.Data)
			}
		}
	})
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		first := h.submit("ai-image-generator", "", "order-42")
		req := map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", ""), "idempotency_key": "order-42"}
		var again jobView
		code, raw := h.do("POST", "/api/jobs", h.tenantKey, req, &again)
		if code != http.StatusOK || again.ID != first.ID {
			t.Fatalf("repeat: %d %s (first %s)", code, raw, first.ID)
		}
		// The same key with another request is a conflict.
		req["params"] = params(t, "ai-image-generator", "something else")
		if code, raw := h.do("POST", "/api/jobs", h.tenantKey, req, nil); code != http.StatusConflict {
			t.Fatalf("conflicting reuse: %d %s", code, raw)
		}
		j := h.wait(first.ID)
		if j.Status != "stored" {
			t.Fatalf("status %s", j.Status)
		}
		// After completion the key still returns the same job.
		req["params"] = params(t, "ai-image-generator", "")
		if code, _ := h.do("POST", "/api/jobs", h.tenantKey, req, &again); code != http.StatusOK || again.ID != first.ID || again.Status != "stored" {
			t.Fatalf("repeat after completion: %d %+v", code, again)
		}
		if got := h.emu.Emulator.Stats().Creates; got != 1 {
			t.Fatalf("upstream creates = %d, want 1", got)
		}
	})
}

func TestUpstreamJobError(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		j := h.wait(h.submit("face-swap-photo", "noface please", "").ID)
		if j.Status != "error" || j.Error == nil || j.Error.Code != "no_source_face" {
			t.Fatalf("got %s %+v", j.Status, j.Error)
		}
	})
}

// Cancel has no webhook: only the fallback poll sees it.
func TestCanceledUpstreamSeenByPolling(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		j := h.wait(h.submit("text-to-video", "cancelme", "").ID)
		if j.Status != "canceled" || j.UpstreamStatus != "canceled" || j.Polls == 0 {
			t.Fatalf("got %s (upstream %s, polls %d)", j.Status, j.UpstreamStatus, j.Polls)
		}
	})
}

func TestWebhooksDroppedFallBackToPolling(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{faults: emulator.Faults{WebhookDrop: 1}})
		a, b := h.submit("text-to-video", "", ""), h.submit("ai-voice-generator", "", "")
		for _, id := range []string{a.ID, b.ID} {
			j := h.wait(id)
			if j.Status != "stored" || j.Polls == 0 {
				t.Fatalf("job %s: %s polls %d", id, j.Status, j.Polls)
			}
			h.checkOutputs(j)
		}
		if st := h.emu.Emulator.Stats(); st.WebhooksDropped == 0 || st.WebhooksSent != 0 {
			t.Fatalf("emulator stats: %+v", st)
		}
	})
}

func TestDuplicatedWebhooksProcessedOnce(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{faults: emulator.Faults{WebhookDuplicate: 1}, expect: 50})
		j := h.wait(h.submit("text-to-video", "", "").ID)
		if j.Status != "stored" {
			t.Fatalf("status %s", j.Status)
		}
		// Let the duplicates arrive: every delivery twice, however slow
		// the machine.
		evs := h.events(j.ID)
		for deadline := time.Now().Add(10 * time.Second); h.emu.Emulator.Stats().WebhooksSent < 2*count(evs, "webhook") && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			evs = h.events(j.ID)
		}
		if n := count(evs, "stored"); n != 1 {
			t.Fatalf("stored %d times: %v", n, evs)
		}
		if n, want := count(evs, "output_stored"), len(j.Outputs); n != want {
			t.Fatalf("output_stored %d times, want %d: %v", n, want, evs)
		}
		st := h.emu.Emulator.Stats()
		if st.WebhooksSent < 2*count(evs, "webhook") {
			t.Fatalf("webhooks sent %d, processed %d: duplicates not deduplicated? %v", st.WebhooksSent, count(evs, "webhook"), evs)
		}
		if st.Downloads != len(j.Outputs) {
			t.Fatalf("downloads = %d, want %d", st.Downloads, len(j.Outputs))
		}
	})
}

// A create whose answer is lost is never sent again.
func TestAmbiguousCreateIsNotRepeated(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{faults: emulator.Faults{AmbiguousCreate: 1}})
		j := h.wait(h.submit("ai-image-generator", "", "").ID)
		if j.Status != "create_outcome_unknown" || j.Error == nil || j.Error.Code != "create_outcome_unknown" {
			t.Fatalf("got %s %+v", j.Status, j.Error)
		}
		h.stop() // nothing can send a create after Close
		if got := h.emu.Emulator.Stats().Creates; got != 1 {
			t.Fatalf("upstream creates = %d, want 1", got)
		}
	})
}

// A job left in creating by a crashed process (lease expired) becomes
// create_outcome_unknown and is not sent.
func TestCrashedCreateBecomesUnknown(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{noStart: true})
		ctx := context.Background()
		tenant, err := h.store.TenantByKey(ctx, gateway.HashKey(h.tenantKey))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		j := &gateway.Job{ID: "job_crashed", TenantID: tenant.ID, Tool: "ai-image-generator", Kind: "image",
			Params: []byte(`{"style":{"prompt":"x"},"image_count":1}`), Status: gateway.StatusPending, CreatedAt: now, UpdatedAt: now}
		if _, _, err := h.store.CreateJob(ctx, j, gateway.Event{Type: "created"}); err != nil {
			t.Fatal(err)
		}
		// What a worker writes before sending the create, then dies.
		j.Status, j.NextRunAt, j.LeaseOwner, j.LeaseUntil = gateway.StatusCreating, now, "dead-replica", now.Add(-time.Second)
		if err := h.store.UpdateJob(ctx, gateway.JobUpdate{Job: j}); err != nil {
			t.Fatal(err)
		}
		h.start()
		got := h.wait(j.ID)
		if got.Status != "create_outcome_unknown" {
			t.Fatalf("status %s", got.Status)
		}
		if n := h.emu.Emulator.Stats().Creates; n != 0 {
			t.Fatalf("upstream creates = %d, want 0", n)
		}
	})
}

// Closing the gateway mid-flight and opening a new one on the same
// database finishes every job, each created once.
func TestRestartMidFlight(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{speed: 100})
		tools := []string{"text-to-video", "auto-subtitle-generator", "image-to-video", "ai-voice-generator", "body-swap"}
		var ids []string
		for _, tool := range tools {
			ids = append(ids, h.submit(tool, "", "").ID)
		}
		// Wait until all are upstream, then stop before they finish.
		deadline := time.Now().Add(20 * time.Second)
		for h.emu.Emulator.Stats().Creates < len(tools) {
			if time.Now().After(deadline) {
				t.Fatal("creates did not happen")
			}
			time.Sleep(5 * time.Millisecond)
		}
		var inFlight int
		for _, id := range ids {
			if j, err := h.store.Job(context.Background(), "", id); err == nil && !j.Status.Terminal() {
				inFlight++
			}
		}
		if inFlight == 0 {
			t.Fatal("every job finished before the restart; slow the emulator down")
		}
		h.stop()
		h.start()
		for _, id := range ids {
			j := h.wait(id)
			if j.Status != "stored" {
				t.Fatalf("job %s (%s) after restart: %s %+v", id, j.Tool, j.Status, j.Error)
			}
			h.checkOutputs(j)
		}
		if got := h.emu.Emulator.Stats().Creates; got != len(tools) {
			t.Fatalf("upstream creates = %d, want %d", got, len(tools))
		}
	})
}

func TestTruncatedDownloadsAreRetried(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{faults: emulator.Faults{TruncateDownload: 0.5}})
		var ids []string
		for range 4 {
			ids = append(ids, h.submit("ai-image-generator", "", "").ID)
		}
		failures := 0
		for _, id := range ids {
			j := h.wait(id)
			if j.Status != "stored" {
				t.Fatalf("status %s %+v", j.Status, j.Error)
			}
			h.checkOutputs(j)
			failures += count(h.events(id), "store_failed")
		}
		if failures == 0 {
			t.Fatal("no truncated download was seen; the fault did not fire")
		}
	})
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		var other struct {
			APIKey string `json:"api_key"`
		}
		if code, raw := h.do("POST", "/api/admin/tenants", h.adminKey, map[string]any{"name": "other"}, &other); code != http.StatusCreated {
			t.Fatalf("create tenant: %d %s", code, raw)
		}
		j := h.wait(h.submit("ai-image-generator", "", "").ID)
		for _, p := range []string{"/api/jobs/" + j.ID, "/api/jobs/" + j.ID + "/outputs/0", "/api/jobs/" + j.ID + "/events"} {
			if code, _ := h.do("GET", p, other.APIKey, nil, nil); code != http.StatusNotFound {
				t.Fatalf("other tenant GET %s: %d, want 404", p, code)
			}
		}
		if code, _ := h.do("DELETE", "/api/jobs/"+j.ID, other.APIKey, nil, nil); code != http.StatusNotFound {
			t.Fatalf("other tenant DELETE: %d", code)
		}
		var list struct {
			Jobs []jobView `json:"jobs"`
		}
		h.do("GET", "/api/jobs", other.APIKey, nil, &list)
		if len(list.Jobs) != 0 {
			t.Fatalf("other tenant lists %d jobs", len(list.Jobs))
		}
		// The admin sees every tenant's jobs.
		if code, _ := h.do("GET", "/api/jobs/"+j.ID, h.adminKey, nil, nil); code != http.StatusOK {
			t.Fatalf("admin GET: %d", code)
		}
		// A tenant key is not an admin key.
		if code, _ := h.do("GET", "/api/admin/tenants", h.tenantKey, nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("tenant on admin route: %d", code)
		}
	})
}

func TestListPaginationAndFilters(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{workers: -1}) // API only: jobs stay pending
		want := map[string]bool{}
		for i := range 5 {
			tool := "ai-image-generator"
			if i%2 == 1 {
				tool = "ai-voice-generator"
			}
			want[h.submit(tool, "", "").ID] = true
		}
		seen := map[string]bool{}
		cursor := ""
		for page := 0; ; page++ {
			var resp struct {
				Jobs       []jobView `json:"jobs"`
				NextCursor string    `json:"next_cursor"`
			}
			code, raw := h.do("GET", "/api/jobs?limit=2&cursor="+cursor, h.tenantKey, nil, &resp)
			if code != http.StatusOK || page > 5 {
				t.Fatalf("list: %d %s", code, raw)
			}
			for _, j := range resp.Jobs {
				if seen[j.ID] {
					t.Fatalf("job %s on two pages", j.ID)
				}
				seen[j.ID] = true
			}
			if resp.NextCursor == "" {
				break
			}
			cursor = resp.NextCursor
		}
		if len(seen) != len(want) {
			t.Fatalf("listed %d jobs, want %d", len(seen), len(want))
		}
		var resp struct {
			Jobs []jobView `json:"jobs"`
		}
		h.do("GET", "/api/jobs?tool=ai-voice-generator&status=pending", h.tenantKey, nil, &resp)
		if len(resp.Jobs) != 2 {
			t.Fatalf("filtered list: %d jobs", len(resp.Jobs))
		}
		h.do("GET", "/api/jobs?status=stored", h.tenantKey, nil, &resp)
		if len(resp.Jobs) != 0 {
			t.Fatalf("status filter: %d jobs", len(resp.Jobs))
		}
	})
}

func TestEventStream(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		j := h.submit("ai-image-generator", "", "")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/api/jobs/"+j.ID+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+h.tenantKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
			t.Fatalf("%d %s", resp.StatusCode, ct)
		}
		var types []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				types = append(types, ev)
			}
		}
		all := strings.Join(types, ",")
		for _, want := range []string{"created", "create_sent", "submitted", "output_stored", "stored", "end"} {
			if !strings.Contains(all, want) {
				t.Fatalf("stream lacks %q: %s", want, all)
			}
		}
		if types[len(types)-1] != "end" {
			t.Fatalf("stream does not end with end: %s", all)
		}
	})
}

func TestDeleteJob(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		j := h.wait(h.submit("ai-image-generator", "", "").ID)
		var del jobView
		if code, raw := h.do("DELETE", "/api/jobs/"+j.ID+"?upstream=true", h.tenantKey, nil, &del); code != http.StatusOK {
			t.Fatalf("delete: %d %s", code, raw)
		}
		if code, _ := h.do("GET", "/api/jobs/"+j.ID+"/outputs/0", h.tenantKey, nil, nil); code != http.StatusGone {
			t.Fatalf("output after delete: %d, want 410", code)
		}
		if n := h.emu.Emulator.Stats().Requests["DELETE /v1/image-projects/{id} 204"]; n != 1 {
			t.Fatalf("upstream deletes: %v", h.emu.Emulator.Stats().Requests)
		}
		// A deleted job reads deleted (its outputs are gone), and filters
		// by status say so.
		if del.Status != "deleted" {
			t.Fatalf("deleted stored job reads %s", del.Status)
		}
		var got jobView
		if h.do("GET", "/api/jobs/"+j.ID, h.tenantKey, nil, &got); got.Status != "deleted" || got.Outputs[0].Stored {
			t.Fatalf("deleted job: %s, outputs %+v", got.Status, got.Outputs)
		}
		var list struct {
			Jobs []jobView `json:"jobs"`
		}
		h.do("GET", "/api/jobs?status=stored", h.tenantKey, nil, &list)
		for _, l := range list.Jobs {
			if l.ID == j.ID {
				t.Fatal("status=stored lists a deleted job")
			}
		}
		h.do("GET", "/api/jobs?status=deleted", h.tenantKey, nil, &list)
		if len(list.Jobs) != 1 || list.Jobs[0].ID != j.ID {
			t.Fatalf("status=deleted: %+v", list.Jobs)
		}
		// A job still tracked is deleted too (tracking stops).
		p := h.submit("video-to-video", "", "")
		if code, raw := h.do("DELETE", "/api/jobs/"+p.ID, h.tenantKey, nil, &del); code != http.StatusOK && code != http.StatusConflict {
			t.Fatalf("delete in flight: %d %s", code, raw)
		}
		for code := http.StatusConflict; code == http.StatusConflict; time.Sleep(10 * time.Millisecond) {
			code, _ = h.do("DELETE", "/api/jobs/"+p.ID, h.tenantKey, nil, &del)
		}
		if del.Status != "deleted" {
			t.Fatalf("deleted in-flight job: %s", del.Status)
		}
	})
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		var budgeted struct {
			APIKey string `json:"api_key"`
		}
		h.do("POST", "/api/admin/tenants", h.adminKey, map[string]any{"name": "broke", "credit_budget": 0}, &budgeted)
		cases := []struct {
			name, method, path, key string
			body                    any
			want                    int
			contains                string
		}{
			{"no key", "POST", "/api/jobs", "", `{}`, 401, "missing API key"},
			{"bad key", "POST", "/api/jobs", "hgt_nope", `{}`, 401, "invalid API key"},
			{"malformed", "POST", "/api/jobs", h.tenantKey, `{"tool":`, 400, "malformed JSON"},
			{"unknown field", "POST", "/api/jobs", h.tenantKey, `{"tool":"ai-image-generator","parms":{}}`, 400, "malformed JSON"},
			{"no tool", "POST", "/api/jobs", h.tenantKey, `{"params":{}}`, 400, "tool is required"},
			{"unknown tool", "POST", "/api/jobs", h.tenantKey, `{"tool":"make-magic","params":{}}`, 400, "unknown tool"},
			{"invalid params", "POST", "/api/jobs", h.tenantKey, `{"tool":"ai-image-generator","params":{"image_count":1}}`, 400, "params.style"},
			{"params not object", "POST", "/api/jobs", h.tenantKey, `{"tool":"ai-image-generator","params":[1]}`, 400, "params must be a JSON object"},
			{"bad callback", "POST", "/api/jobs", h.tenantKey, map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", ""), "callback_url": "ftp://x"}, 400, "callback_url"},
			{"too large", "POST", "/api/jobs", h.tenantKey, `{"tool":"ai-image-generator","metadata":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`, 413, "larger than"},
			{"admin submits", "POST", "/api/jobs", h.adminKey, map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", "")}, 403, "tenant key"},
			{"budget", "POST", "/api/jobs", budgeted.APIKey, map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", "")}, 402, "budget"},
			{"no job", "GET", "/api/jobs/job_nope", h.tenantKey, nil, 404, "no such job"},
			{"bad status", "GET", "/api/jobs?status=done", h.tenantKey, nil, 400, "unknown status"},
			{"bad limit", "GET", "/api/jobs?limit=0", h.tenantKey, nil, 400, "limit"},
			{"bad tool filter", "GET", "/api/jobs?tool=zz", h.tenantKey, nil, 400, "unknown tool"},
			{"unsigned webhook", "POST", "/hooks/magichour", "", `{"type":"video.completed","payload":{"id":"x"}}`, 401, "signature"},
		}
		for _, c := range cases {
			code, raw := h.do(c.method, c.path, c.key, c.body, nil)
			if code != c.want || !strings.Contains(string(raw), c.contains) {
				t.Errorf("%s: %d %s; want %d containing %q", c.name, code, raw, c.want, c.contains)
			}
		}
		// A stale (replayed) webhook with a valid signature is refused.
		body := []byte(`{"type":"video.completed","payload":{"id":"x","status":"complete"}}`)
		req, _ := http.NewRequest("POST", h.srv.URL+"/hooks/magichour", strings.NewReader(string(body)))
		for k, v := range webhook.Headers("whsec_test_secret", time.Now().Add(-time.Hour), body) {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("stale webhook: %d", resp.StatusCode)
		}
		if n := h.emu.Emulator.Stats().Creates; n != 0 {
			t.Errorf("bad input reached upstream: %d creates", n)
		}
	})
}

func TestHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sqlite://"+t.TempDir()+"/h.db", hopts{workers: -1})
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, raw := h.do("GET", p, "", nil, nil); code != 200 {
			t.Fatalf("%s: %d %s", p, code, raw)
		}
	}
	// Bootstrap happens once per database.
	if _, _, created, err := gateway.Bootstrap(context.Background(), h.store); err != nil || created {
		t.Fatalf("second bootstrap: %v %v", created, err)
	}
}

// Two gateway processes on one database share the work through leases:
// every job is created once and stored once.
func TestTwoReplicasShareWork(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{workers: 2})
		s2, err := gateway.OpenStore(context.Background(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		cfg := h.cfg
		cfg.Store = s2
		g2, err := gateway.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g2.Close(); s2.Close() })
		tools := []string{"ai-image-generator", "text-to-video", "ai-voice-generator", "face-swap-photo", "ai-headshot-generator"}
		var ids []string
		for i := range 12 {
			ids = append(ids, h.submit(tools[i%len(tools)], "", "").ID)
		}
		for _, id := range ids {
			j := h.wait(id)
			if j.Status != "stored" {
				t.Fatalf("job %s: %s %+v", id, j.Status, j.Error)
			}
			evs := h.events(id)
			if count(evs, "create_sent") != 1 || count(evs, "stored") != 1 {
				t.Fatalf("job %s timeline: %v", id, evs)
			}
		}
		if got := h.emu.Emulator.Stats().Creates; got != len(ids) {
			t.Fatalf("upstream creates = %d, want %d", got, len(ids))
		}
	})
}
