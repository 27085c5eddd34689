package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Faults makes the emulator misbehave on purpose, to test clients. Every
// probability is in [0,1] and is drawn from a generator seeded by WithSeed,
// so a given request sequence misbehaves the same way every run. Set it with
// WithFaults, Emulator.SetFaults or PUT /_emulator/faults. In JSON the field
// names are snake_case and durations are strings such as "250ms" (a bare
// number is read as seconds).
type Faults struct {
	// RateLimit, ServerError, BadGateway and Unavailable are the chances of
	// answering an API request (any /v1/ route) with 429, 500, 502 or 503
	// before doing anything else: no job is created.
	RateLimit   float64 `json:"rate_limit"`
	ServerError float64 `json:"server_error"`
	BadGateway  float64 `json:"bad_gateway"`
	Unavailable float64 `json:"unavailable"`
	// AmbiguousCreate is the chance that a create request is carried out
	// (job created, credits charged, counted in Stats.Creates) but the
	// connection is then closed without any response.
	AmbiguousCreate float64 `json:"ambiguous_create"`
	// RetryAfter is the Retry-After of a 429, rounded up to whole seconds
	// (default 1s).
	RetryAfter time.Duration `json:"retry_after"`
	// Latency is added before every API request is answered.
	Latency time.Duration `json:"latency"`
	// DownloadBytesPerSec throttles downloads (0: unlimited).
	DownloadBytesPerSec int64 `json:"download_bytes_per_sec"`
	// TruncateDownload is the chance that a download sends its headers (with
	// the full Content-Length) and half the body, then closes the connection.
	TruncateDownload float64 `json:"truncate_download"`
	// ExpireURLs is the chance that each download URL handed out in a
	// project body is already expired.
	ExpireURLs float64 `json:"expire_urls"`
	// WebhookDrop is the chance that a webhook delivery is never sent.
	WebhookDrop float64 `json:"webhook_drop"`
	// WebhookDuplicate is the chance that a delivery is sent twice.
	WebhookDuplicate float64 `json:"webhook_duplicate"`
	// WebhookReorder is the chance that a delivery is held back (by
	// max(2×WebhookDelay, 200ms)) so that later events overtake it.
	WebhookReorder float64 `json:"webhook_reorder"`
	// WebhookDelay delays every delivery.
	WebhookDelay time.Duration `json:"webhook_delay"`
}

type faultsJSON struct {
	RateLimit           float64  `json:"rate_limit"`
	ServerError         float64  `json:"server_error"`
	BadGateway          float64  `json:"bad_gateway"`
	Unavailable         float64  `json:"unavailable"`
	AmbiguousCreate     float64  `json:"ambiguous_create"`
	RetryAfter          duration `json:"retry_after"`
	Latency             duration `json:"latency"`
	DownloadBytesPerSec int64    `json:"download_bytes_per_sec"`
	TruncateDownload    float64  `json:"truncate_download"`
	ExpireURLs          float64  `json:"expire_urls"`
	WebhookDrop         float64  `json:"webhook_drop"`
	WebhookDuplicate    float64  `json:"webhook_duplicate"`
	WebhookReorder      float64  `json:"webhook_reorder"`
	WebhookDelay        duration `json:"webhook_delay"`
}

// MarshalJSON writes durations as strings such as "250ms".
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		f.RateLimit, f.ServerError, f.BadGateway, f.Unavailable, f.AmbiguousCreate,
		duration(f.RetryAfter), duration(f.Latency), f.DownloadBytesPerSec, f.TruncateDownload,
		f.ExpireURLs, f.WebhookDrop, f.WebhookDuplicate, f.WebhookReorder, duration(f.WebhookDelay),
	})
}

// UnmarshalJSON reads durations as strings ("250ms") or numbers of seconds.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	*f = Faults{
		j.RateLimit, j.ServerError, j.BadGateway, j.Unavailable, j.AmbiguousCreate,
		time.Duration(j.RetryAfter), time.Duration(j.Latency), j.DownloadBytesPerSec, j.TruncateDownload,
		j.ExpireURLs, j.WebhookDrop, j.WebhookDuplicate, j.WebhookReorder, time.Duration(j.WebhookDelay),
	}
	return f.validate()
}

func (f Faults) validate() error {
	for name, p := range map[string]float64{
		"rate_limit": f.RateLimit, "server_error": f.ServerError, "bad_gateway": f.BadGateway,
		"unavailable": f.Unavailable, "ambiguous_create": f.AmbiguousCreate, "truncate_download": f.TruncateDownload,
		"expire_urls": f.ExpireURLs, "webhook_drop": f.WebhookDrop, "webhook_duplicate": f.WebhookDuplicate,
		"webhook_reorder": f.WebhookReorder,
	} {
		if p < 0 || p > 1 {
			return fmt.Errorf("faults: %s must be between 0 and 1, got %g", name, p)
		}
	}
	if f.RetryAfter < 0 || f.Latency < 0 || f.WebhookDelay < 0 || f.DownloadBytesPerSec < 0 {
		return errors.New("faults: durations and rates must not be negative")
	}
	return nil
}

type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s == "" {
			*d = 0
			return nil
		}
		x, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("bad duration %q: %w", s, err)
		}
		*d = duration(x)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration must be a string like \"250ms\" or a number of seconds: %w", err)
	}
	*d = duration(secs * float64(time.Second))
	return nil
}

// roll draws one fault decision.
func (e *Emulator) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.faultRand.Float64() < p
}

// sleepCtx waits d or until ctx or the emulator is done.
func (e *Emulator) sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return errClosed
	}
}

var errClosed = errors.New("emulator closed")

// throttledWriter limits the write rate of a download.
type throttledWriter struct {
	http.ResponseWriter
	ctx  context.Context
	e    *Emulator
	rate int64
}

func (t *throttledWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func (t *throttledWriter) Write(p []byte) (int, error) {
	chunk := max(t.rate/10, 1)
	n := 0
	for len(p) > 0 {
		c := min(int64(len(p)), chunk)
		w, err := t.ResponseWriter.Write(p[:c])
		n += w
		if err != nil {
			return n, err
		}
		_ = http.NewResponseController(t.ResponseWriter).Flush()
		p = p[c:]
		if err := t.e.sleepCtx(t.ctx, time.Duration(float64(c)/float64(t.rate)*float64(time.Second))); err != nil {
			return n, err
		}
	}
	return n, nil
}

// truncatingWriter sends at most limit body bytes, then drops the
// connection.
type truncatingWriter struct {
	http.ResponseWriter
	limit   int64
	written int64
	cut     bool
}

var errTruncated = errors.New("download truncated by fault injection")

func (t *truncatingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func (t *truncatingWriter) Write(p []byte) (int, error) {
	if t.cut {
		return 0, errTruncated
	}
	if rest := t.limit - t.written; int64(len(p)) > rest {
		n, _ := t.ResponseWriter.Write(p[:rest])
		t.written += int64(n)
		t.drop()
		return n, errTruncated
	}
	n, err := t.ResponseWriter.Write(p)
	t.written += int64(n)
	return n, err
}

func (t *truncatingWriter) drop() {
	t.cut = true
	rc := http.NewResponseController(t.ResponseWriter)
	_ = rc.Flush()
	if conn, _, err := rc.Hijack(); err == nil {
		_ = conn.Close()
	}
}
