package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/magichour/webhook"
)

// receiver is a callback endpoint that fails its first failFirst
// deliveries and records the verified ones.
type receiver struct {
	t         *testing.T
	secret    string
	failFirst int
	mu        sync.Mutex
	calls     int
	got       []map[string]any
	srv       *httptest.Server
}

func newReceiver(t *testing.T, secret string, failFirst int) *receiver {
	r := &receiver{t: t, secret: secret, failFirst: failFirst}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := webhook.Verify(r.secret, req.Header, body, time.Now()); err != nil {
			t.Errorf("callback signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls++
		if r.calls <= r.failFirst {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("callback body: %v", err)
		}
		r.got = append(r.got, m)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) delivered() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.got...)
}

func (h *harness) tenantSecret() string {
	h.t.Helper()
	t, err := h.store.TenantByKey(context.Background(), gateway.HashKey(h.tenantKey))
	if err != nil {
		h.t.Fatal(err)
	}
	return t.Secret
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A job's callback_url gets a signed job.stored event; failed deliveries
// are retried with backoff, and every attempt is visible.
func TestCallbackDeliveredWithRetries(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		rcv := newReceiver(t, h.tenantSecret(), 2)
		req := map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", ""), "callback_url": rcv.srv.URL + "/hook"}
		var j jobView
		if code, raw := h.do("POST", "/api/jobs", h.tenantKey, req, &j); code != http.StatusAccepted {
			t.Fatalf("submit: %d %s", code, raw)
		}
		bad := map[string]any{"tool": "face-swap-photo", "params": params(t, "face-swap-photo", "noface"), "callback_url": rcv.srv.URL + "/hook"}
		var jb jobView
		h.do("POST", "/api/jobs", h.tenantKey, bad, &jb)
		waitFor(t, "two callbacks", func() bool { return len(rcv.delivered()) == 2 })
		types := map[string]map[string]any{}
		for _, m := range rcv.delivered() {
			types[m["type"].(string)] = m
		}
		stored, errored := types["job.stored"], types["job.error"]
		if stored == nil || errored == nil {
			t.Fatalf("callbacks: %v", rcv.delivered())
		}
		job := stored["job"].(map[string]any)
		if job["id"] != j.ID || job["status"] != "stored" || len(job["outputs"].([]any)) == 0 {
			t.Fatalf("job.stored body: %v", stored)
		}
		if ej := errored["job"].(map[string]any); ej["id"] != jb.ID || ej["error"].(map[string]any)["code"] != "no_source_face" {
			t.Fatalf("job.error body: %v", errored)
		}
		// Attempts are recorded: 2 failures then a success over both.
		var all int
		for _, id := range []string{j.ID, jb.ID} {
			var d struct {
				Deliveries []struct {
					Status   string `json:"status"`
					Attempts int    `json:"attempts"`
					Log      []struct {
						StatusCode int `json:"status_code"`
					} `json:"attempt_log"`
				} `json:"deliveries"`
			}
			waitFor(t, "delivered status", func() bool {
				h.do("GET", "/api/jobs/"+id+"/deliveries", h.tenantKey, nil, &d)
				return len(d.Deliveries) == 1 && d.Deliveries[0].Status == "delivered"
			})
			if len(d.Deliveries[0].Log) != d.Deliveries[0].Attempts {
				t.Fatalf("attempt log %+v", d)
			}
			all += d.Deliveries[0].Attempts
			if n := count(h.events(id), "callback_attempt"); n != d.Deliveries[0].Attempts {
				t.Fatalf("callback_attempt events = %d, attempts %d", n, d.Deliveries[0].Attempts)
			}
		}
		if all != 4 {
			t.Fatalf("attempts = %d, want 4 (2 failures + 2 successes)", all)
		}
		var got struct {
			Callbacks []struct {
				Status string `json:"status"`
			} `json:"callbacks"`
		}
		h.do("GET", "/api/jobs/"+j.ID, h.tenantKey, nil, &got)
		if len(got.Callbacks) != 1 || got.Callbacks[0].Status != "delivered" {
			t.Fatalf("GET job callbacks: %+v", got)
		}
	})
}

// A receiver that never accepts is given up on after CallbackMaxAge.
func TestCallbackGivenUp(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		// Retries come every few tens of milliseconds (the harness's retry
		// base), so a 3 s age leaves room for several attempts however
		// late the first one runs on a loaded machine.
		h := newHarness(t, dbURL, hopts{cfg: func(c *gateway.Config) { c.CallbackMaxAge = 3 * time.Second }})
		rcv := newReceiver(t, h.tenantSecret(), 1<<30)
		req := map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", ""), "callback_url": rcv.srv.URL}
		var j jobView
		h.do("POST", "/api/jobs", h.tenantKey, req, &j)
		var d struct {
			Deliveries []struct {
				Status   string `json:"status"`
				Attempts int    `json:"attempts"`
			} `json:"deliveries"`
		}
		waitFor(t, "callback given up", func() bool {
			h.do("GET", "/api/jobs/"+j.ID+"/deliveries", h.tenantKey, nil, &d)
			return len(d.Deliveries) == 1 && d.Deliveries[0].Status == "failed"
		})
		if d.Deliveries[0].Attempts < 2 {
			t.Fatalf("gave up after %d attempts", d.Deliveries[0].Attempts)
		}
	})
}

// By default a callback URL on an internal address is refused at submit.
func TestCallbackPrivateAddressRefused(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{denyPrivateCallbacks: true, workers: -1})
		for _, u := range []string{"http://127.0.0.1:9/hook", "http://localhost/x", "http://169.254.169.254/latest", "http://[::1]/x", "http://10.0.0.8/x"} {
			req := map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", ""), "callback_url": u}
			code, raw := h.do("POST", "/api/jobs", h.tenantKey, req, nil)
			if code != http.StatusBadRequest || !strings.Contains(string(raw), "callback_url") {
				t.Fatalf("%s: %d %s", u, code, raw)
			}
		}
	})
}
