package magichour

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// maxRetryAfter caps how long a server's Retry-After can make the client wait.
const maxRetryAfter = 10 * time.Minute

// request describes one logical API call; do sends it, retrying per policy.
type request struct {
	method string
	// path is the API path ("/v1/face-swap"), joined to the base URL and
	// sent with the Authorization header.
	path string
	// url, when set, is an absolute URL used instead of path, sent WITHOUT
	// the Authorization header (pre-signed storage URLs).
	url string
	// body is the JSON body, nil for none.
	body []byte
	// create marks a job-creating POST: retried only when no job can exist.
	create bool
	// noTimeout skips the per-request timeout, for streamed bodies whose
	// reading the caller bounds itself.
	noTimeout bool
	// header holds extra headers.
	header http.Header
}

func (r *request) target(base string) string {
	if r.url != "" {
		return r.url
	}
	return base + r.path
}

// label names the request in errors and logs (never with a query string,
// which for pre-signed URLs carries a credential).
func (r *request) label() string {
	if r.url != "" {
		if i := bytes.IndexAny([]byte(r.url), "?#"); i >= 0 {
			return r.url[:i]
		}
		return r.url
	}
	return r.path
}

// do sends r and returns the 2xx response (the caller closes its body) or an
// error. It is the single place where the retry policy lives:
//
//   - GET, DELETE and other non-create requests are retried on network
//     errors, 429 and 5xx.
//   - A create (r.create) is retried only when no job can have been created:
//     the connection failed before the request was written (dial error,
//     connection refused), or the server answered 429, or 502/503 without a
//     project id. A network failure after the request may have been written
//     (reset, EOF, timeout waiting for the answer) and any other 5xx (500,
//     504: the job may exist) return an *OutcomeUnknownError matching
//     ErrCreateOutcomeUnknown, never retried.
//
// Retries back off exponentially with full jitter, honour Retry-After, stop
// at RetryPolicy.MaxAttempts and whenever ctx is done.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("magichour: %s %s: %w", r.method, r.label(), err)
	}
	max := c.retry.MaxAttempts
	if max < 1 {
		max = 1
	}
	for attempt := 1; ; attempt++ {
		resp, sent, err := c.send(ctx, &r)
		var (
			lastErr    error
			status     int
			retryAfter time.Duration
		)
		switch {
		case err != nil:
			if r.create && sent {
				return nil, &OutcomeUnknownError{Method: r.method, Path: r.label(), Err: err}
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("magichour: %s %s: %w", r.method, r.label(), err)
			}
			lastErr = fmt.Errorf("magichour: %s %s: %w", r.method, r.label(), err)
			if attempt >= max {
				if attempt > 1 {
					return nil, fmt.Errorf("magichour: %s %s: giving up after %d attempts: %w", r.method, r.label(), attempt, err)
				}
				return nil, lastErr
			}
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return resp, nil
		default:
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			resp.Body.Close()
			apiErr := newAPIError(r.method, r.label(), resp, body)
			apiErr.Attempts = attempt
			status = resp.StatusCode
			retry := retryableStatus(status)
			if r.create {
				retry = status == http.StatusTooManyRequests ||
					((status == http.StatusBadGateway || status == http.StatusServiceUnavailable) && !hasProjectID(body))
				if !retry && status >= 500 {
					return nil, &OutcomeUnknownError{Method: r.method, Path: r.label(), Err: apiErr}
				}
			}
			if !retry || attempt >= max {
				return nil, apiErr
			}
			lastErr = apiErr
			retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}

		delay := c.backoff(attempt, retryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			return nil, fmt.Errorf("magichour: %s %s: not retrying: the context deadline comes before the next attempt (in %v): %w",
				r.method, r.label(), delay.Round(time.Millisecond), lastErr)
		}
		attrs := []any{"method", r.method, "path", r.label(), "attempt", attempt, "delay", delay}
		if status != 0 {
			attrs = append(attrs, "status", status)
		} else {
			attrs = append(attrs, "err", err.Error())
		}
		c.logger.Log(ctx, retryLogLevel(status), "magichour: retrying request", attrs...)
		if err := sleepCtx(ctx, delay); err != nil {
			return nil, fmt.Errorf("magichour: %s %s: stopped retrying: %w (last error: %w)", r.method, r.label(), err, lastErr)
		}
	}
}

// retryLogLevel logs server-requested retries at Info, network hiccups at Debug.
func retryLogLevel(status int) slog.Level {
	if status == http.StatusTooManyRequests || status >= 500 {
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
}

// hasProjectID reports whether an error body nevertheless carries an "id",
// in which case a job exists and a create must not be resubmitted.
func hasProjectID(body []byte) bool {
	var v struct {
		ID string `json:"id"`
	}
	return json.Unmarshal(body, &v) == nil && v.ID != ""
}

// send performs one attempt. sent reports whether the request may have
// reached the server: false only when the failure certainly happened before
// any byte of the request was written (no connection obtained, or a dial
// error).
func (c *Client) send(ctx context.Context, r *request) (resp *http.Response, sent bool, err error) {
	actx, cancel := ctx, context.CancelFunc(func() {})
	if c.timeout > 0 && !r.noTimeout {
		actx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	var gotConn, wrote atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { gotConn.Store(true) },
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	// touched records whether the transport read any byte of the body: the
	// server cannot act on a request before its whole body arrives, so an
	// untouched body proves nothing usable was sent.
	var touched atomic.Bool
	req, err := http.NewRequestWithContext(actx, r.method, r.target(c.baseURL), nil)
	if err != nil {
		cancel()
		return nil, false, err
	}
	if r.body != nil {
		b := r.body
		req.ContentLength = int64(len(b))
		req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(&touchReader{r: bytes.NewReader(b), touched: &touched}), nil
		}
		req.Body, _ = req.GetBody()
		if len(b) == 0 {
			req.Body, req.GetBody = http.NoBody, nil
		}
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if r.url == "" {
		req.Header.Set("Authorization", "Bearer "+c.key.value())
	}
	req.Header.Set("User-Agent", c.ua)
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if r.body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err = c.hc.Do(req)
	if err != nil {
		cancel()
		notSent := !wrote.Load() && !touched.Load() && (gotConn.Load() || isDialError(err))
		// *url.Error repeats method and URL, which the caller's message
		// already names; keep its cause (net.Error, context errors).
		var uerr *url.Error
		if errors.As(err, &uerr) && uerr.Err != nil {
			err = uerr.Err
		}
		return nil, !notSent, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, true, nil
}

// isDialError reports whether err happened while connecting, before anything
// could be written.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED)
}

type touchReader struct {
	r       io.Reader
	touched *atomic.Bool
}

func (t *touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.touched.Store(true)
	}
	return n, err
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// backoff returns how long to wait before attempt+1 after attempt failed:
// retryAfter when the server asked for it (capped at 10 minutes), otherwise
// a random duration in [0, min(MaxDelay, BaseDelay·2^(attempt-1))].
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, maxRetryAfter)
	}
	base, maxd := c.retry.BaseDelay, c.retry.MaxDelay
	if base <= 0 {
		base = DefaultRetryPolicy.BaseDelay
	}
	if maxd <= 0 {
		maxd = DefaultRetryPolicy.MaxDelay
	}
	ceiling := base
	for i := 1; i < attempt && ceiling < maxd; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, maxd)
	return rand.N(ceiling + 1)
}

// sleepCtx sleeps for d or until ctx is done, returning ctx.Err() then.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date.
// It returns 0 when absent or unparseable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if !(secs > 0) { // also NaN
			return 0
		}
		if secs >= maxRetryAfter.Seconds() {
			return maxRetryAfter // and no float-to-int overflow
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
