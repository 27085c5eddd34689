package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder collects the events a handler delivers.
type recorder struct {
	mu     sync.Mutex
	events []*Event
	fail   atomic.Int32 // fail this many next calls
}

func (r *recorder) fn(ctx context.Context, e *Event) error {
	if ctx == nil {
		return errors.New("nil context")
	}
	if r.fail.Load() > 0 {
		r.fail.Add(-1)
		return errors.New("database down")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.events) }

func newTestHandler(t *testing.T, opts ...HandlerOption) (*Handler, *recorder, *clock) {
	t.Helper()
	c := &clock{t: time.Unix(vecTS, 0)}
	rec := &recorder{}
	h := NewHandler(vecSecret, rec.fn, append([]HandlerOption{WithClock(c.now)}, opts...)...)
	return h, rec, c
}

// deliver signs body at the clock's time with secret and serves it.
func deliver(h http.Handler, secret string, at time.Time, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/magichour", strings.NewReader(body))
	for k, v := range Headers(secret, at, []byte(body)) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func message(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var m struct{ Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m.Message == "" {
		t.Errorf("body %q: %v", w.Body, err)
	}
	return m.Message
}

func TestHandlerValid(t *testing.T) {
	h, rec, c := newTestHandler(t)
	w := deliver(h, vecSecret, c.now(), vecBody)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	message(t, w)
	if rec.count() != 1 {
		t.Fatalf("fn called %d times", rec.count())
	}
	e := rec.events[0]
	if e.Type != EventVideoCompleted || e.Payload.ID != "cm4abc123" || !e.Timestamp.Equal(c.now()) {
		t.Errorf("event %+v", e)
	}
}

// The precomputed vector, with its literal headers, is accepted.
func TestHandlerVector(t *testing.T) {
	h, rec, _ := newTestHandler(t)
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(vecBody))
	req.Header.Set("magic-hour-event-timestamp", "1700000000")
	req.Header.Set("magic-hour-event-signature", vecSig)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK || rec.count() != 1 {
		t.Fatalf("status %d, calls %d: %s", w.Code, rec.count(), w.Body)
	}
}

func TestHandlerRejects(t *testing.T) {
	h, rec, c := newTestHandler(t, WithLogger(slog.New(slog.DiscardHandler)))
	now := c.now()
	tests := []struct {
		name string
		req  func() *http.Request
		code int
	}{
		{"forged", func() *http.Request {
			r := httptest.NewRequest("POST", "/", strings.NewReader(vecBody))
			for k, v := range Headers("attacker", now, []byte(vecBody)) {
				r.Header[k] = v
			}
			return r
		}, 401},
		{"tampered", func() *http.Request {
			r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Replace(vecBody, "450", "1", 1)))
			for k, v := range Headers(vecSecret, now, []byte(vecBody)) {
				r.Header[k] = v
			}
			return r
		}, 401},
		{"unsigned", func() *http.Request {
			return httptest.NewRequest("POST", "/", strings.NewReader(vecBody))
		}, 401},
		{"stale", func() *http.Request {
			r := httptest.NewRequest("POST", "/", strings.NewReader(vecBody))
			for k, v := range Headers(vecSecret, now.Add(-6*time.Minute), []byte(vecBody)) {
				r.Header[k] = v
			}
			return r
		}, 401},
		{"future", func() *http.Request {
			r := httptest.NewRequest("POST", "/", strings.NewReader(vecBody))
			for k, v := range Headers(vecSecret, now.Add(6*time.Minute), []byte(vecBody)) {
				r.Header[k] = v
			}
			return r
		}, 401},
		{"GET", func() *http.Request { return httptest.NewRequest("GET", "/", nil) }, 405},
		{"PUT signed", func() *http.Request {
			r := httptest.NewRequest("PUT", "/", strings.NewReader(vecBody))
			for k, v := range Headers(vecSecret, now, []byte(vecBody)) {
				r.Header[k] = v
			}
			return r
		}, 405},
		{"signed garbage", func() *http.Request {
			r := httptest.NewRequest("POST", "/", strings.NewReader("not json"))
			for k, v := range Headers(vecSecret, now, []byte("not json")) {
				r.Header[k] = v
			}
			return r
		}, 400},
		{"signed missing id", func() *http.Request {
			b := `{"type":"video.completed","payload":{}}`
			r := httptest.NewRequest("POST", "/", strings.NewReader(b))
			for k, v := range Headers(vecSecret, now, []byte(b)) {
				r.Header[k] = v
			}
			return r
		}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req())
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			msg := message(t, w)
			if tt.code == 405 && w.Header().Get("Allow") != "POST" {
				t.Errorf("Allow %q", w.Header().Get("Allow"))
			}
			if strings.HasPrefix(msg, "webhook:") {
				t.Errorf("message %q", msg)
			}
		})
	}
	if rec.count() != 0 {
		t.Errorf("fn called %d times for rejected deliveries", rec.count())
	}
}

func TestHandlerOversized(t *testing.T) {
	h, rec, c := newTestHandler(t, WithMaxBodyBytes(int64(len(vecBody))))
	if w := deliver(h, vecSecret, c.now(), vecBody); w.Code != 200 {
		t.Fatalf("body of exactly the limit: %d %s", w.Code, w.Body)
	}
	big := vecBody + " "
	if w := deliver(h, vecSecret, c.now(), big); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("body one byte over: %d %s", w.Code, w.Body)
	}
	// Without a Content-Length (chunked), the limit still applies.
	req := httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	for k, v := range Headers(vecSecret, c.now(), []byte(big)) {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over: %d %s", w.Code, w.Body)
	}
	if rec.count() != 1 {
		t.Errorf("fn called %d times", rec.count())
	}

	// Default limit is 1 MiB.
	h2, _, _ := newTestHandler(t)
	huge := `{"type":"video.completed","payload":{"id":"x","name":"` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}}`
	if w := deliver(h2, vecSecret, c.now(), huge); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 MiB body: %d", w.Code)
	}
}

func TestHandlerDuplicate(t *testing.T) {
	h, rec, c := newTestHandler(t)
	if w := deliver(h, vecSecret, c.now(), vecBody); w.Code != 200 {
		t.Fatalf("first: %d", w.Code)
	}
	// Same delivery replayed, and re-signed later by a retrying sender.
	if w := deliver(h, vecSecret, c.now(), vecBody); w.Code != 200 || message(t, w) != "duplicate" {
		t.Fatalf("replay: %d %s", w.Code, w.Body)
	}
	c.add(2 * time.Minute)
	if w := deliver(h, vecSecret, c.now(), vecBody); w.Code != 200 || message(t, w) != "duplicate" {
		t.Fatalf("re-signed retry: %d %s", w.Code, w.Body)
	}
	if rec.count() != 1 {
		t.Fatalf("fn called %d times", rec.count())
	}
	// A different event for the same project is not a duplicate.
	other := strings.Replace(vecBody, `"video.completed"`, `"video.started"`, 1)
	if w := deliver(h, vecSecret, c.now(), other); w.Code != 200 || rec.count() != 2 {
		t.Fatalf("distinct event: %d, calls %d", w.Code, rec.count())
	}
}

func TestHandlerDedupeExpiryAndDisable(t *testing.T) {
	h, rec, c := newTestHandler(t, WithDedupe(time.Hour, 100))
	deliver(h, vecSecret, c.now(), vecBody)
	c.add(time.Hour)
	if w := deliver(h, vecSecret, c.now(), vecBody); w.Code != 200 || rec.count() != 2 {
		t.Fatalf("after window: %d, calls %d", w.Code, rec.count())
	}

	h, rec, c = newTestHandler(t, WithDedupe(0, 0))
	deliver(h, vecSecret, c.now(), vecBody)
	deliver(h, vecSecret, c.now(), vecBody)
	if rec.count() != 2 {
		t.Fatalf("dedupe disabled: calls %d", rec.count())
	}
}

func TestHandlerErrorThenRetry(t *testing.T) {
	var buf bytes.Buffer
	h, rec, c := newTestHandler(t, WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	rec.fail.Store(1)
	w := deliver(h, vecSecret, c.now(), vecBody)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("failing fn: %d", w.Code)
	}
	if msg := message(t, w); strings.Contains(msg, "database") {
		t.Errorf("error text leaked: %q", msg)
	}
	if !strings.Contains(buf.String(), "database down") {
		t.Errorf("error not logged: %s", buf.String())
	}
	c.add(30 * time.Second)
	if w := deliver(h, vecSecret, c.now(), vecBody); w.Code != 200 || message(t, w) != "ok" {
		t.Fatalf("retry: %d %s", w.Code, w.Body)
	}
	if rec.count() != 1 {
		t.Fatalf("calls %d", rec.count())
	}
	if w := deliver(h, vecSecret, c.now(), vecBody); message(t, w) != "duplicate" {
		t.Fatalf("after success: %s", w.Body)
	}
}

func TestHandlerPanic(t *testing.T) {
	calls := 0
	c := &clock{t: time.Unix(vecTS, 0)}
	h := NewHandler(vecSecret, func(ctx context.Context, e *Event) error {
		calls++
		if calls == 1 {
			panic("boom")
		}
		return nil
	}, WithClock(c.now))
	if w := deliver(h, vecSecret, c.now(), vecBody); w.Code != 500 {
		t.Fatalf("panic: %d", w.Code)
	}
	if w := deliver(h, vecSecret, c.now(), vecBody); w.Code != 200 || calls != 2 {
		t.Fatalf("retry after panic: %d, calls %d", w.Code, calls)
	}

	// http.ErrAbortHandler propagates, and releases the claim.
	aborts := 0
	h = NewHandler(vecSecret, func(ctx context.Context, e *Event) error {
		aborts++
		if aborts == 1 {
			panic(http.ErrAbortHandler)
		}
		return nil
	}, WithClock(c.now))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("recovered %v", p)
			}
		}()
		deliver(h, vecSecret, c.now(), vecBody)
	}()
	if w := deliver(h, vecSecret, c.now(), vecBody); w.Code != 200 || aborts != 2 {
		t.Fatalf("after abort: %d %s, calls %d", w.Code, w.Body, aborts)
	}
}

func TestHandlerConcurrentDuplicate(t *testing.T) {
	c := &clock{t: time.Unix(vecTS, 0)}
	entered := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	h := NewHandler(vecSecret, func(ctx context.Context, e *Event) error {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		return nil
	}, WithClock(c.now))
	done := make(chan int)
	go func() { done <- deliver(h, vecSecret, c.now(), vecBody).Code }()
	<-entered
	w := deliver(h, vecSecret, c.now(), vecBody)
	if w.Code != http.StatusConflict || w.Header().Get("Retry-After") == "" {
		t.Fatalf("concurrent duplicate: %d %v", w.Code, w.Header())
	}
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("first: %d", code)
	}
	if w := deliver(h, vecSecret, c.now(), vecBody); w.Code != 200 || message(t, w) != "duplicate" || calls.Load() != 1 {
		t.Fatalf("later retry: %d %s, calls %d", w.Code, w.Body, calls.Load())
	}
}

func TestHandlerParallel(t *testing.T) {
	h, rec, c := newTestHandler(t, WithDedupe(time.Hour, 16))
	srv := httptest.NewServer(h)
	defer srv.Close()
	var wg sync.WaitGroup
	const n = 40
	for i := range n {
		wg.Go(func() {
			// 20 distinct bodies, each sent twice.
			body := strings.Replace(vecBody, "cm4abc123", "p"+string(rune('a'+i%20)), 1)
			req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(body))
			for k, v := range Headers(vecSecret, c.now(), []byte(body)) {
				req.Header[k] = v
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 && resp.StatusCode != 409 {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if got := rec.count(); got < 20 || got > n {
		t.Errorf("calls %d", got)
	}
	if l := h.dd.len(); l > 16 {
		t.Errorf("dedupe holds %d > 16 entries", l)
	}
}

func TestHandlerUnknownEvent(t *testing.T) {
	body := `{"type":"video.canceled","payload":{"id":"v1","status":"canceled"}}`
	h, rec, c := newTestHandler(t)
	if w := deliver(h, vecSecret, c.now(), body); w.Code != 200 || rec.count() != 0 {
		t.Fatalf("unknown event ignored: %d, calls %d", w.Code, rec.count())
	}
	h, rec, c = newTestHandler(t, WithUnknownEvents())
	if w := deliver(h, vecSecret, c.now(), body); w.Code != 200 || rec.count() != 1 || rec.events[0].Type.Known() {
		t.Fatalf("unknown event delivered: %d, calls %d", w.Code, rec.count())
	}
}

func TestHandlerRotationAndTolerance(t *testing.T) {
	h, rec, c := newTestHandler(t, WithSecrets("new-secret", ""))
	deliver(h, "new-secret", c.now(), vecBody)
	deliver(h, vecSecret, c.now(), vec2Body)
	if rec.count() != 2 {
		t.Fatalf("rotation: calls %d", rec.count())
	}
	h, rec, c = newTestHandler(t, WithTolerance(10*time.Second))
	if w := deliver(h, vecSecret, c.now().Add(-11*time.Second), vecBody); w.Code != 401 {
		t.Fatalf("11s old with 10s tolerance: %d", w.Code)
	}
	if w := deliver(h, vecSecret, c.now().Add(-9*time.Second), vecBody); w.Code != 200 || rec.count() != 1 {
		t.Fatalf("9s old with 10s tolerance: %d", w.Code)
	}
}

func TestNewHandlerPanics(t *testing.T) {
	fn := func(context.Context, *Event) error { return nil }
	for name, f := range map[string]func(){
		"nil fn":       func() { NewHandler("s", nil) },
		"empty secret": func() { NewHandler("", fn) },
		"only empty":   func() { NewHandler("", fn, WithSecrets("", "")) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
	// An empty primary secret with a rotation secret is fine.
	NewHandler("", fn, WithSecrets("s"))
}
