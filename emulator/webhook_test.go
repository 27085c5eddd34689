package emulator_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/catalog"
)

func TestWebhooks(t *testing.T) {
	hooks := &hookSink{t: t, secret: "topsecret", fail: 1}
	url := newHookServer(t, hooks)
	c := newClient(t, emulator.WithSpeed(2000), emulator.WithWebhookURL(url), emulator.WithWebhookSecret("topsecret"),
		emulator.WithWebhookRetry(3, 5*time.Millisecond))
	id := c.mustCreate("face-swap", map[string]any{"start_seconds": 0, "end_seconds": 2,
		"assets": map[string]any{"video_source": "file", "video_file_path": "https://x.example/v.mp4", "image_file_path": "https://x.example/f.png"}})
	p := c.wait(catalog.KindVideo, id)
	waitFor(t, func() bool { return len(hooks.types()) == 2 })
	if got := strings.Join(hooks.types(), ","); got != "video.completed,video.started" {
		t.Fatalf("events %s", got)
	}
	// The sender counts a delivery after the receiver's answer reaches it,
	// a moment after the sink has recorded the event.
	waitFor(t, func() bool { return c.s.Emulator.Stats().WebhooksSent >= 2 })
	st := c.s.Emulator.Stats()
	if st.WebhooksFailed != 1 || st.WebhooksSent != 2 {
		t.Errorf("sent %d failed %d, want 2 and 1 (one retried after a 500)", st.WebhooksSent, st.WebhooksFailed)
	}
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	for _, ev := range hooks.events {
		get := catalog.Project(catalog.KindVideo, catalog.RoleGet)
		if errs := checkSchema(get.Response, ev.Payload, ev.Type); len(errs) > 0 {
			t.Errorf("payload: %v", errs)
		}
		want := map[string]string{"video.started": "rendering", "video.completed": "complete"}[ev.Type]
		if ev.Payload["status"] != want || ev.Payload["id"] != id {
			t.Errorf("%s payload status %v", ev.Type, ev.Payload["status"])
		}
		if ev.Type == "video.completed" && num(ev.Payload["credits_charged"]) != num(p["credits_charged"]) {
			t.Errorf("completed payload credits %v, GET %v", ev.Payload["credits_charged"], p["credits_charged"])
		}
	}
	if emulator.Sign("topsecret", 42, []byte("{}")) != hmacHex("topsecret", "42.{}") {
		t.Error("Sign disagrees with the documented algorithm")
	}
}

func TestAdminCancel(t *testing.T) {
	hooks := &hookSink{t: t, secret: "k"}
	url := newHookServer(t, hooks)
	c := newClient(t, emulator.WithSpeed(1), emulator.WithWebhookURL(url), emulator.WithWebhookSecret("k"))
	before := c.s.Emulator.Balance()
	id := c.mustCreate("video-to-video", map[string]any{"start_seconds": 0, "end_seconds": 2,
		"style": map[string]any{"art_style": "3D Render"}, "assets": map[string]any{"video_source": "file", "video_file_path": "https://x.example/v.mp4"}})
	if c.s.Emulator.Balance() >= before {
		t.Fatal("not charged")
	}
	code, m, _ := c.do("POST", "/_emulator/projects/"+id+"/cancel", nil)
	if code != 200 {
		t.Fatalf("cancel: %d %v", code, m)
	}
	_, p, _ := c.do("GET", "/v1/video-projects/"+id, nil)
	if p["status"] != "canceled" || num(p["credits_charged"]) != 0 || c.s.Emulator.Balance() != before {
		t.Errorf("after cancel: %v %v balance %d", p["status"], p["credits_charged"], c.s.Emulator.Balance())
	}
	if code, _, _ := c.do("POST", "/_emulator/projects/"+id+"/cancel", nil); code != 409 {
		t.Errorf("second cancel: %d", code)
	}
	if code, _, _ := c.do("POST", "/_emulator/projects/nope/cancel", nil); code != 404 {
		t.Errorf("cancel unknown: %d", code)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(hooks.types()); n != 0 {
		t.Errorf("cancel sent %d webhooks", n)
	}
}

// TestLifecycleFakeClock drives the lifecycle with an injected clock.
func TestLifecycleFakeClock(t *testing.T) {
	clk := newFakeClock()
	ch := make(chan hookEvent, 10)
	hooks := &hookSink{t: t, secret: "k", ch: ch}
	url := newHookServer(t, hooks)
	c := newClient(t, emulator.WithClock(clk), emulator.WithWebhookURL(url), emulator.WithWebhookSecret("k"), emulator.WithSeed(7))
	id := c.mustCreate("text-to-video", map[string]any{"end_seconds": 2, "style": map[string]any{"prompt": "x"}})
	status := func() string {
		_, p, _ := c.do("GET", "/v1/video-projects/"+id, nil)
		return p["status"].(string)
	}
	if s := status(); s != "queued" {
		t.Fatalf("status %s", s)
	}
	var seen []string
	for range 400 { // 400 × 1s covers 51 s × jitter
		clk.Advance(time.Second)
		s := status()
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		if s == "complete" {
			break
		}
	}
	if got := strings.Join(seen, ","); got != "queued,rendering,complete" {
		t.Errorf("statuses %s", got)
	}
	// Each event has its own delivery, so under load they may arrive in
	// either order (as from Magic Hour): check the set, not the order.
	var got []string
	for range 2 {
		select {
		case ev := <-ch:
			got = append(got, ev.Type)
		case <-time.After(5 * time.Second):
			t.Fatalf("webhooks %v, want video.started and video.completed", got)
		}
	}
	slices.Sort(got)
	if strings.Join(got, ",") != "video.completed,video.started" {
		t.Errorf("webhooks %v, want video.started and video.completed", got)
	}
	// A fast image job skips "rendering" and image.started.
	id = c.mustCreate("ai-face-editor", map[string]any{"assets": map[string]any{"image_file_path": "https://x.example/a.png"}, "style": map[string]any{}})
	clk.Advance(time.Minute)
	select {
	case ev := <-ch:
		if ev.Type != "image.completed" {
			t.Errorf("fast image job sent %s first", ev.Type)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no image.completed webhook")
	}
}

func TestFaults(t *testing.T) {
	body := map[string]any{"end_seconds": 1, "style": map[string]any{"prompt": "x"}}
	for _, tc := range []struct {
		name string
		f    emulator.Faults
		code int
	}{
		{"rate limit", emulator.Faults{RateLimit: 1, RetryAfter: 1500 * time.Millisecond}, 429},
		{"server error", emulator.Faults{ServerError: 1}, 500},
		{"bad gateway", emulator.Faults{BadGateway: 1}, 502},
		{"unavailable", emulator.Faults{Unavailable: 1}, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, emulator.WithFaults(tc.f))
			code, m, h := c.do("POST", "/v1/text-to-video", body)
			if code != tc.code || m["message"] == "" {
				t.Errorf("got %d %v", code, m)
			}
			if tc.code == 429 && h.Get("Retry-After") != "2" {
				t.Errorf("Retry-After %q", h.Get("Retry-After"))
			}
			if c.s.Emulator.Stats().Creates != 0 {
				t.Error("job created despite fault")
			}
		})
	}

	t.Run("latency and runtime admin API", func(t *testing.T) {
		c := newClient(t)
		code, _, _ := c.do("PUT", "/_emulator/faults", `{"latency":"150ms","rate_limit":0}`)
		if code != 200 {
			t.Fatalf("PUT faults: %d", code)
		}
		start := time.Now()
		c.do("GET", "/v1/video-projects/x", nil)
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("latency %v", d)
		}
		_, m, _ := c.do("GET", "/_emulator/faults", nil)
		if m["latency"] != "150ms" {
			t.Errorf("GET faults %v", m)
		}
		if code, _, _ := c.do("PUT", "/_emulator/faults", `{"rate_limit":2}`); code != 400 {
			t.Errorf("bad faults accepted: %d", code)
		}
	})

	t.Run("ambiguous create", func(t *testing.T) {
		c := newClient(t, emulator.WithFaults(emulator.Faults{AmbiguousCreate: 1}))
		before := c.s.Emulator.Balance()
		j, _ := jsonMarshal(body)
		req, _ := http.NewRequest("POST", c.s.URL+"/v1/text-to-video", bytes.NewReader(j))
		req.Header.Set("Authorization", "Bearer x")
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got a response %d", resp.StatusCode)
		}
		st := c.s.Emulator.Stats()
		if st.Creates != 1 || c.s.Emulator.Balance() >= before || st.Requests["POST /v1/text-to-video dropped"] != 1 {
			t.Errorf("creates %d balance %d requests %v", st.Creates, c.s.Emulator.Balance(), st.Requests)
		}
	})

	t.Run("downloads", func(t *testing.T) {
		c := newClient(t, emulator.WithSpeed(5000), emulator.WithOutputSize(20_000))
		id := c.mustCreate("text-to-video", body)
		c.wait(catalog.KindVideo, id)
		url := func() string {
			_, p, _ := c.do("GET", "/v1/video-projects/"+id, nil)
			return p["downloads"].([]any)[0].(map[string]any)["url"].(string)
		}
		e := c.s.Emulator
		_ = e.SetFaults(emulator.Faults{DownloadBytesPerSec: 50_000})
		start := time.Now()
		if resp, b, err := fetch(t, url()); err != nil || resp.StatusCode != 200 || len(b) != 20_000 {
			t.Errorf("slow download: %v %d", err, len(b))
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("slow download took %v, want >= 0.3s", d)
		}
		_ = e.SetFaults(emulator.Faults{TruncateDownload: 1})
		resp, b, err := fetch(t, url())
		if resp == nil || resp.ContentLength != 20_000 || !errors.Is(err, io.ErrUnexpectedEOF) || len(b) >= 20_000 {
			t.Errorf("truncated download: err=%v len=%d", err, len(b))
		}
		_ = e.SetFaults(emulator.Faults{ExpireURLs: 1})
		if resp, _, _ := fetch(t, url()); resp.StatusCode != 403 {
			t.Errorf("expired URL fault: %d", resp.StatusCode)
		}
	})

	t.Run("webhooks", func(t *testing.T) {
		hooks := &hookSink{t: t, secret: "k"}
		url := newHookServer(t, hooks)
		c := newClient(t, emulator.WithSpeed(5000), emulator.WithWebhookURL(url), emulator.WithWebhookSecret("k"))
		e := c.s.Emulator
		run := func(f emulator.Faults) {
			hooks.mu.Lock()
			hooks.events = nil
			hooks.mu.Unlock()
			_ = e.SetFaults(f)
			c.wait(catalog.KindVideo, c.mustCreate("text-to-video", body))
		}
		run(emulator.Faults{WebhookDrop: 1})
		waitFor(t, func() bool { return e.Stats().WebhooksDropped >= 2 })
		time.Sleep(50 * time.Millisecond) // nothing may arrive late either
		if n := len(hooks.types()); n != 0 || e.Stats().WebhooksDropped != 2 {
			t.Errorf("drop: %d delivered, %d dropped", n, e.Stats().WebhooksDropped)
		}
		run(emulator.Faults{WebhookDuplicate: 1})
		waitFor(t, func() bool { return len(hooks.types()) == 4 })
		start := time.Now()
		run(emulator.Faults{WebhookDelay: 200 * time.Millisecond})
		waitFor(t, func() bool { return len(hooks.types()) == 2 })
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("delayed webhooks after %v", d)
		}
		run(emulator.Faults{WebhookReorder: 1})
		waitFor(t, func() bool { return len(hooks.types()) == 2 })
	})
}

func TestReorderWebhooks(t *testing.T) {
	clk := newFakeClock()
	ch := make(chan hookEvent, 10)
	hooks := &hookSink{t: t, secret: "k", ch: ch}
	url := newHookServer(t, hooks)
	c := newClient(t, emulator.WithClock(clk), emulator.WithWebhookURL(url), emulator.WithWebhookSecret("k"))
	e := c.s.Emulator
	_ = e.SetFaults(emulator.Faults{WebhookReorder: 1})
	id := c.mustCreate("text-to-video", map[string]any{"end_seconds": 1, "style": map[string]any{"prompt": "x"}})
	status := func() string {
		_, p, _ := c.do("GET", "/v1/video-projects/"+id, nil)
		return p["status"].(string)
	}
	for status() == "queued" {
		clk.Advance(time.Second)
	}
	// Let the scheduler hand video.started over (held back 200 ms) before
	// the fault is lifted.
	waitFor(t, func() bool { return e.Stats().WebhooksDispatched >= 1 })
	_ = e.SetFaults(emulator.Faults{})
	for status() != "complete" {
		clk.Advance(time.Second)
	}
	var got []string
	for range 2 {
		select {
		case ev := <-ch:
			got = append(got, ev.Type)
		case <-time.After(5 * time.Second):
			t.Fatalf("webhooks so far: %v", got)
		}
	}
	if strings.Join(got, ",") != "video.completed,video.started" {
		t.Errorf("order %v, want completed overtaking the held-back started", got)
	}
}

// fakeClock is a manually advanced Clock.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c  chan time.Time
	at time.Time
	cl *fakeClock
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) emulator.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: c.now.Add(d), cl: c}
	if d <= 0 {
		t.c <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.c <- c.now
		} else {
			kept = append(kept, t)
		}
	}
	c.timers = kept
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.cl.mu.Lock()
	defer t.cl.mu.Unlock()
	for i, x := range t.cl.timers {
		if x == t {
			t.cl.timers = append(t.cl.timers[:i], t.cl.timers[i+1:]...)
			return true
		}
	}
	return false
}
