package magichour

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hangUp closes the connection without answering, after the request body
// has been read (newFake reads it): the server may have acted on it.
func hangUp(t *testing.T, w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	conn.Close()
}

func okProject(w http.ResponseWriter) {
	writeJSON(w, 200, map[string]any{"id": "p1", "status": "queued"})
}

func okCreate(w http.ResponseWriter) {
	writeJSON(w, 200, map[string]any{"id": "job-1", "credits_charged": 5})
}

var imageBody = map[string]any{"image_count": 1, "style": map[string]any{"prompt": "a cat"}}

func TestGetRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		fail     func(t *testing.T, w http.ResponseWriter)
		failures int
		attempts int
		wantErr  error
		requests int
	}{
		{"503 then ok", func(t *testing.T, w http.ResponseWriter) { writeJSON(w, 503, nil) }, 2, 4, nil, 3},
		{"500 then ok", func(t *testing.T, w http.ResponseWriter) { writeJSON(w, 500, nil) }, 1, 4, nil, 2},
		{"429 then ok", func(t *testing.T, w http.ResponseWriter) { writeJSON(w, 429, nil) }, 3, 4, nil, 4},
		{"connection reset then ok", hangUp, 2, 4, nil, 3},
		{"502 exhausted", func(t *testing.T, w http.ResponseWriter) { writeJSON(w, 502, nil) }, 10, 3, ErrServer, 3},
		{"429 exhausted", func(t *testing.T, w http.ResponseWriter) { writeJSON(w, 429, nil) }, 10, 2, ErrRateLimited, 2},
		{"404 not retried", func(t *testing.T, w http.ResponseWriter) { writeJSON(w, 404, nil) }, 10, 4, ErrNotFound, 1},
		{"401 not retried", func(t *testing.T, w http.ResponseWriter) { writeJSON(w, 401, nil) }, 10, 4, ErrUnauthorized, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= tc.failures {
					tc.fail(t, w)
					return
				}
				okProject(w)
			})
			c := newTestClient(t, f.URL, fastRetry(tc.attempts))
			p, err := c.Video.Get(context.Background(), "p1")
			if tc.wantErr == nil && (err != nil || p.ID != "p1") {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got := len(f.requests()); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
		})
	}
}

func TestDeleteRetries(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeJSON(w, 503, nil)
			return
		}
		w.WriteHeader(204)
	})
	c := newTestClient(t, f.URL)
	if err := c.Audio.Delete(context.Background(), "a1"); err != nil {
		t.Fatal(err)
	}
	if got := len(f.requests()); got != 2 {
		t.Errorf("%d requests", got)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	var first time.Time
	var gap atomic.Int64
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			writeJSON(w, 429, map[string]string{"message": "Too Many Requests"})
			return
		}
		gap.Store(int64(time.Since(first)))
		okProject(w)
	})
	c := newTestClient(t, f.URL) // backoff alone would wait at most 5ms
	if _, err := c.Image.Get(context.Background(), "p1"); err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(gap.Load()); d < 950*time.Millisecond {
		t.Errorf("retried after %v, want >= 1s (Retry-After)", d)
	}
}

func TestContextStopsRetries(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Retry-After", "30")
		writeJSON(w, 503, nil)
	})
	c := newTestClient(t, f.URL, fastRetry(10))

	// Cancel during the backoff sleep.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Video.Get(ctx, "p1")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrServer) {
		t.Errorf("err = %v, want context.Canceled wrapping the last 503", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Error("cancel did not stop the backoff sleep")
	}

	// A deadline before the next attempt stops at once.
	ctx, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	start = time.Now()
	_, err = c.Video.Get(ctx, "p1")
	if !errors.Is(err, ErrServer) || !strings.Contains(err.Error(), "deadline") || time.Since(start) > time.Second {
		t.Errorf("err = %v after %v", err, time.Since(start))
	}
	if got := len(f.requests()); got != 2 {
		t.Errorf("%d requests, want 2", got)
	}

	// An already-canceled context sends nothing.
	done, cancel3 := context.WithCancel(context.Background())
	cancel3()
	if _, err := c.Video.Get(done, "p1"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if got := len(f.requests()); got != 2 {
		t.Errorf("%d requests after a canceled call", got)
	}
}

// TestAmbiguousCreateNotRepeated is the proof: the server reads the whole
// create request and hangs up without answering; the client must send it
// exactly once and report ErrCreateOutcomeUnknown.
func TestAmbiguousCreateNotRepeated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opts  []Option
		serve func(t *testing.T, w http.ResponseWriter)
		cause error
	}{
		{"hang up after body", nil, hangUp, nil},
		{"timeout waiting for answer", []Option{WithTimeout(100 * time.Millisecond)}, func(t *testing.T, w http.ResponseWriter) {
			time.Sleep(400 * time.Millisecond)
			okCreate(w)
		}, context.DeadlineExceeded},
		{"500", nil, func(t *testing.T, w http.ResponseWriter) { writeJSON(w, 500, map[string]string{"message": "Internal"}) }, ErrServer},
		{"504", nil, func(t *testing.T, w http.ResponseWriter) { writeJSON(w, 504, nil) }, ErrServer},
		{"502 with a project id", nil, func(t *testing.T, w http.ResponseWriter) {
			writeJSON(w, 502, map[string]any{"id": "job-1", "message": "Bad Gateway"})
		}, ErrServer},
		{"200 with garbage", nil, func(t *testing.T, w http.ResponseWriter) {
			w.WriteHeader(200)
			w.Write([]byte("{not json"))
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { tc.serve(t, w) })
			c := newTestClient(t, f.URL, append([]Option{fastRetry(5)}, tc.opts...)...)
			_, err := c.Create(context.Background(), ToolAIImageGenerator, imageBody)
			if !errors.Is(err, ErrCreateOutcomeUnknown) {
				t.Fatalf("err = %v, want ErrCreateOutcomeUnknown", err)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.cause)
			}
			if !strings.Contains(err.Error(), "not retried") {
				t.Errorf("message %q does not say it was not retried", err)
			}
			if got := len(f.requests()); got != 1 {
				t.Fatalf("the create was sent %d times, want exactly 1", got)
			}
		})
	}
}

func TestCreateRetriedWhenNoJobCanExist(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			writeJSON(w, 429, map[string]string{"message": "Too Many Requests"})
		case 2:
			writeJSON(w, 503, map[string]string{"message": "overloaded"})
		case 3:
			writeJSON(w, 502, map[string]string{"message": "Bad Gateway"})
		default:
			okCreate(w)
		}
	})
	c := newTestClient(t, f.URL, fastRetry(4))
	res, err := c.Create(context.Background(), ToolAIImageGenerator, imageBody)
	if err != nil || res.ID != "job-1" {
		t.Fatalf("res %+v err %v", res, err)
	}
	if got := len(f.requests()); got != 4 {
		t.Errorf("%d requests, want 4", got)
	}

	// Exhausted: the last APIError, no outcome-unknown.
	g := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 503, nil) })
	c = newTestClient(t, g.URL, fastRetry(3))
	_, err = c.Create(context.Background(), ToolAIImageGenerator, imageBody)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Attempts != 3 || errors.Is(err, ErrCreateOutcomeUnknown) {
		t.Errorf("err = %v", err)
	}
	if got := len(g.requests()); got != 3 {
		t.Errorf("%d requests, want 3", got)
	}
}

// flakyDialer refuses the first n connections, as a server that is not
// listening yet would.
func flakyDialer(n int32) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var calls atomic.Int32
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if calls.Add(1) <= n {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		return d.DialContext(ctx, network, addr)
	}
}

func TestCreateRetriedOnConnectionRefused(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { okCreate(w) })
	tr := &http.Transport{DialContext: flakyDialer(2)}
	t.Cleanup(tr.CloseIdleConnections)
	c := newTestClient(t, f.URL, WithHTTPClient(&http.Client{Transport: tr}))
	res, err := c.Create(context.Background(), ToolAIImageGenerator, imageBody)
	if err != nil || res.ID != "job-1" {
		t.Fatalf("res %+v err %v", res, err)
	}
	if got := len(f.requests()); got != 1 {
		t.Errorf("%d requests reached the server, want 1", got)
	}

	// A real refused port: retried, then a plain network error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c = newTestClient(t, "http://"+addr, fastRetry(3))
	_, err = c.Create(context.Background(), ToolAIImageGenerator, imageBody)
	if err == nil || errors.Is(err, ErrCreateOutcomeUnknown) || !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("err = %v", err)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	c := &Client{retry: RetryPolicy{MaxAttempts: 10, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}}
	for attempt, ceiling := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: time.Second, 60: time.Second} {
		var maxSeen time.Duration
		for range 200 {
			d := c.backoff(attempt, 0)
			if d < 0 || d > ceiling {
				t.Fatalf("attempt %d: %v outside [0, %v]", attempt, d, ceiling)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < ceiling/2 {
			t.Errorf("attempt %d: no jitter up to the ceiling (max %v)", attempt, maxSeen)
		}
	}
	if d := c.backoff(1, 7*time.Second); d != 7*time.Second {
		t.Errorf("Retry-After not used: %v", d)
	}
	if d := c.backoff(1, time.Hour); d != maxRetryAfter {
		t.Errorf("Retry-After not capped: %v", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"0":                             0,
		"-2":                            0,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:04:15 GMT": 10 * time.Second,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestSleepCtx(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if err := sleepCtx(context.Background(), time.Millisecond); err != nil {
		t.Error(err)
	}
}
