package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/hourglasshq/hourglass/magichour/webhook"
)

// Callbacks: when a job with a callback_url reaches stored, error,
// canceled or create_outcome_unknown, a row is added to the callbacks
// outbox in the same transaction as the change. Any replica's sender
// claims due rows with a lease, POSTs the body signed like Magic Hour's
// webhooks (webhook.Headers with the tenant's secret), records every
// attempt (callback_attempts + a job event), and retries with exponential
// backoff until CallbackMaxAge (24h) has passed since the event.

// callbackTypes maps the statuses that notify to their event type.
var callbackTypes = map[Status]string{
	StatusStored:               "job.stored",
	StatusError:                "job.error",
	StatusCanceled:             "job.canceled",
	StatusCreateOutcomeUnknown: "job.create_outcome_unknown",
	StatusDeleted:              "job.deleted",
}

// callbackBody is what a callback_url receives.
type callbackBody struct {
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Job       jobJSON   `json:"job"`
}

// prepare completes an update before it is written: when the job's status
// changes to one that notifies and the job has a callback URL, it adds the
// callback to the same transaction.
func (g *Gateway) prepare(ctx context.Context, u *JobUpdate) {
	j := u.Job
	typ, ok := callbackTypes[j.Status]
	if !ok || (j.CallbackURL == "" && !g.listen.active()) || j.Status == j.SavedStatus() {
		return
	}
	var outs []Output
	if j.Status == StatusStored {
		outs, _ = g.store.Outputs(context.WithoutCancel(ctx), j.ID)
	}
	now := g.now()
	body, err := json.Marshal(callbackBody{Type: typ, CreatedAt: now, Job: toJSON(g.cfg.PublicURL, j, outs)})
	if err != nil {
		g.log.Error("gateway: encode callback", "job", j.ID, "err", err)
		return
	}
	g.listenCallback(j, typ, body) // listen.go
	if j.CallbackURL == "" {
		return
	}
	u.Callbacks = append(u.Callbacks, Callback{JobID: j.ID, TenantID: j.TenantID, Type: typ, URL: j.CallbackURL,
		Body: body, NextRunAt: now, CreatedAt: now})
	u.Events = append(u.Events, g.event("callback_queued", map[string]any{"type": typ, "url": j.CallbackURL}))
}

// nudgeCallbacks wakes the callback sender.
func (g *Gateway) nudgeCallbacks() {
	select {
	case g.cbWake <- struct{}{}:
	default:
	}
}

// sendCallbacks claims due callbacks and sends each in its own goroutine
// (at most CallbackWorkers at once) until ctx ends; it then waits for the
// sends in flight.
func (g *Gateway) sendCallbacks(ctx context.Context) {
	runPool(ctx, g, leasePool[*Callback]{
		name: "callbacks", size: g.cfg.CallbackWorkers, wake: g.cbWake,
		claim: func(ctx context.Context, owner string, now time.Time, n int) ([]*Callback, error) {
			return g.store.ClaimCallbacks(ctx, owner, now, now.Add(g.cfg.CallbackTimeout+g.cfg.LeaseDuration), n)
		},
		nextDue: g.store.NextCallbackDue,
		run:     func(cb *Callback) { g.deliver(g.workCtx, cb) },
	})
}

// deliver makes one attempt at a callback and records it.
func (g *Gateway) deliver(ctx context.Context, cb *Callback) {
	start := g.now()
	code, err := g.post(ctx, cb)
	if ctx.Err() != nil {
		return // shutting down: the lease expires and another try follows
	}
	now := g.now()
	a, evData, result := cb.Attempt(now, start, code, err, now.Add(g.callbackBackoff(cb.Attempts+1)), g.cfg.CallbackMaxAge)
	g.metrics.callbacks.WithLabelValues(result).Inc()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := g.store.FinishCallbackAttempt(sctx, cb, a, g.event("callback_attempt", evData)); err != nil {
		g.log.Warn("gateway: record callback attempt", "job", cb.JobID, "callback", cb.ID, "err", err)
		return
	}
	if result != "delivered" {
		g.log.Info("gateway: callback not delivered", "job", cb.JobID, "type", cb.Type, "attempt", cb.Attempts, "err", a.Error, "result", result)
	}
}

// post sends the signed callback body.
func (g *Gateway) post(ctx context.Context, cb *Callback) (int, error) {
	t, err := g.store.Tenant(ctx, cb.TenantID)
	if err != nil {
		return 0, fmt.Errorf("tenant: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.CallbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cb.URL, bytes.NewReader(cb.Body))
	if err != nil {
		return 0, err
	}
	for k, v := range webhook.Headers(t.Secret, g.now(), cb.Body) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hourglass-gateway")
	req.Header.Set("Hourglass-Event-Type", cb.Type)
	req.Header.Set("Hourglass-Delivery", fmt.Sprintf("%d", cb.ID))
	resp, err := g.cbClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// callbackBackoff is the delay before retry n: base × 2^(n-1), capped, ±20%.
func (g *Gateway) callbackBackoff(n int) time.Duration {
	return backoff(g.cfg.CallbackRetryBase, g.cfg.CallbackRetryMax, n)
}

// --- SSRF guard ---

// checkPublicURL checks at submit time that rawURL is http(s) and that
// every address its host resolves to is public (unless allowPrivate).
// The dialer checks again at connection time (DNS rebinding).
func checkPublicURL(ctx context.Context, rawURL string, allowPrivate bool) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	if u.User != nil {
		return errors.New("must not carry credentials")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		return checkAddr(ip)
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return errPrivateAddress
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("host %q does not resolve", host)
	}
	for _, a := range addrs {
		if err := checkAddr(a); err != nil {
			return fmt.Errorf("host %q %w", host, err)
		}
	}
	return nil
}

// newCallbackClient returns the client that sends callbacks: no proxy
// (a proxy would dial for us, unchecked), no redirects, and unless
// allowPrivate a dialer that refuses internal addresses after resolution,
// so a name that re-resolves to 127.0.0.1 (DNS rebinding) is still refused.
func newCallbackClient(timeout time.Duration, allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("callback dial %s: %w", address, err)
			}
			if err := checkAddr(ap.Addr()); err != nil {
				return fmt.Errorf("callback dial %s: %w", address, err)
			}
			return nil
		}
	}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is a failed delivery
		},
	}
}
