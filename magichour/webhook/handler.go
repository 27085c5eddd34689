package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

// Defaults of [NewHandler].
const (
	// DefaultMaxBodyBytes is the largest accepted body; larger ones get 413.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultDedupeWindow is how long a successful delivery is remembered.
	DefaultDedupeWindow = 24 * time.Hour
	// DefaultDedupeSize is how many successful deliveries are remembered.
	DefaultDedupeSize = 10000
)

// Handler is an [http.Handler] that receives Magic Hour webhooks. Create it
// with [NewHandler]. It is safe for concurrent use.
//
// For each request it:
//
//   - answers 405 to anything but POST;
//   - reads the body up to the size limit, answering 413 beyond it;
//   - verifies signature and timestamp on the raw body (see [Verifier.Verify]),
//     answering 401 on a missing or bad signature or a stale timestamp;
//   - parses it (see [Parse]), answering 400 if it cannot;
//   - answers 200 without calling the function for a well-formed event of an
//     unknown type (unless [WithUnknownEvents]), so that events Magic Hour
//     adds later are acknowledged instead of retried forever;
//   - answers 200 without calling the function for a repeat of a delivery
//     that already succeeded (same raw body, whatever its timestamp and
//     signature: senders re-sign retries) within the de-duplication window,
//     and 409 to a repeat arriving while the first is still being processed
//     (the sender retries later and then gets 200);
//   - calls the function with the request's context and the parsed event,
//     answering 200 if it returns nil and 500 if it fails or panics, so that
//     the sender retries; a failed delivery is not remembered, so the retry
//     is processed.
//
// Every answer has a JSON body {"message": "..."}. Error messages never
// include the function's error text, which is logged instead.
//
// De-duplication is per Handler, in memory: with several replicas, or
// across restarts, the function must still be idempotent. Deliveries may
// arrive out of order (completed before started; image.started may never
// come): rely on Payload.Status, not on the event sequence.
type Handler struct {
	verifier Verifier
	fn       func(context.Context, *Event) error
	maxBody  int64
	now      func() time.Time
	log      *slog.Logger
	dd       *dedupe // nil: de-duplication disabled
	unknown  bool
}

// HandlerOption configures [NewHandler].
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	secrets    []string
	tolerance  time.Duration
	maxBody    int64
	now        func() time.Time
	log        *slog.Logger
	dedupeTTL  time.Duration
	dedupeSize int
	unknown    bool
}

// WithMaxBodyBytes sets the largest accepted body (default
// [DefaultMaxBodyBytes], 1 MiB); a larger one is answered 413. n <= 0 means
// the default.
func WithMaxBodyBytes(n int64) HandlerOption {
	return func(c *handlerConfig) {
		if n > 0 {
			c.maxBody = n
		}
	}
}

// WithTolerance sets how far the delivery's timestamp may be from the clock
// (default [DefaultTolerance], 5 minutes). 0 means the default; a negative
// value disables the check, leaving de-duplication as the only replay
// defence: avoid it.
func WithTolerance(d time.Duration) HandlerOption {
	return func(c *handlerConfig) { c.tolerance = d }
}

// WithClock sets the clock used to check timestamps and expire
// de-duplication entries (default [time.Now]). nil means the default.
func WithClock(now func() time.Time) HandlerOption {
	return func(c *handlerConfig) {
		if now != nil {
			c.now = now
		}
	}
}

// WithLogger sets where the handler logs rejected deliveries and failures
// of the function (default: nowhere). nil means the default.
func WithLogger(l *slog.Logger) HandlerOption {
	return func(c *handlerConfig) { c.log = l }
}

// WithDedupe sets how long (window) and how many (size) successful
// deliveries are remembered to recognize repeats (defaults
// [DefaultDedupeWindow] and [DefaultDedupeSize]). The least recently seen
// entry is dropped when full. window <= 0 or size <= 0 disables
// de-duplication: every verified delivery then reaches the function.
func WithDedupe(window time.Duration, size int) HandlerOption {
	return func(c *handlerConfig) {
		c.dedupeTTL, c.dedupeSize = window, size
	}
}

// WithSecrets adds secrets accepted besides the one given to [NewHandler],
// for rotating the webhook secret without dropping deliveries. Empty
// strings are ignored.
func WithSecrets(secrets ...string) HandlerOption {
	return func(c *handlerConfig) { c.secrets = append(c.secrets, secrets...) }
}

// WithUnknownEvents makes the handler pass well-formed events of unknown
// type to the function (which sees an [Event] whose Type is not
// [EventType.Known]) instead of acknowledging them without calling it.
func WithUnknownEvents() HandlerOption {
	return func(c *handlerConfig) { c.unknown = true }
}

// NewHandler returns a Handler that verifies deliveries with secret and
// passes each new, valid event to fn. See [Handler] for the behaviour.
//
// It panics if fn is nil or if no non-empty secret is given (an empty
// secret would accept forged deliveries): a missing secret is a
// configuration error best caught at startup.
func NewHandler(secret string, fn func(ctx context.Context, e *Event) error, opts ...HandlerOption) *Handler {
	if fn == nil {
		panic("webhook: NewHandler with nil function")
	}
	c := handlerConfig{
		secrets:    []string{secret},
		maxBody:    DefaultMaxBodyBytes,
		now:        time.Now,
		dedupeTTL:  DefaultDedupeWindow,
		dedupeSize: DefaultDedupeSize,
	}
	for _, o := range opts {
		o(&c)
	}
	var secrets []string
	for _, s := range c.secrets {
		if s != "" {
			secrets = append(secrets, s)
		}
	}
	if len(secrets) == 0 {
		panic("webhook: NewHandler with empty secret")
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		verifier: Verifier{Secrets: secrets, Tolerance: c.tolerance},
		fn:       fn,
		maxBody:  c.maxBody,
		now:      c.now,
		log:      c.log,
		unknown:  c.unknown,
	}
	if c.dedupeTTL > 0 && c.dedupeSize > 0 {
		h.dd = newDedupe(c.dedupeTTL, c.dedupeSize)
	}
	return h
}

// ServeHTTP handles one delivery. See [Handler].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if r.ContentLength > h.maxBody {
		reply(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			reply(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		reply(w, http.StatusBadRequest, "cannot read body")
		return
	}

	now := h.now()
	if err := h.verifier.Verify(r.Header, body, now); err != nil {
		h.log.WarnContext(r.Context(), "webhook: rejected delivery", "error", err, "remote", r.RemoteAddr)
		reply(w, http.StatusUnauthorized, strings.TrimPrefix(err.Error(), "webhook: "))
		return
	}

	e, err := Parse(body)
	unknown := errors.Is(err, ErrUnknownEvent)
	if err != nil && !unknown {
		h.log.WarnContext(r.Context(), "webhook: unparseable delivery", "error", err)
		reply(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "webhook: "))
		return
	}
	sec, _ := parseUnix(strings.TrimSpace(r.Header.Get(HeaderTimestamp))) // verified above
	e.Timestamp = time.Unix(sec, 0)
	log := h.log.With("event", string(e.Type), "project", e.Payload.ID)
	if unknown && !h.unknown {
		log.InfoContext(r.Context(), "webhook: ignored unknown event type")
		reply(w, http.StatusOK, "ignored unknown event type")
		return
	}

	var release func(ok bool) // releases the de-duplication claim once
	if h.dd != nil {
		key := sha256.Sum256(body)
		switch h.dd.begin(key, now) {
		case claimDone:
			log.DebugContext(r.Context(), "webhook: duplicate delivery")
			reply(w, http.StatusOK, "duplicate")
			return
		case claimBusy:
			log.InfoContext(r.Context(), "webhook: duplicate delivery in progress")
			w.Header().Set("Retry-After", "5")
			reply(w, http.StatusConflict, "delivery already in progress")
			return
		}
		released := false
		release = func(ok bool) {
			if !released {
				released = true
				h.dd.finish(key, h.now(), ok)
			}
		}
		// Released (as failed) even if the function aborts the handler
		// with http.ErrAbortHandler.
		defer release(false)
	}

	err = h.call(r.Context(), e)
	if release != nil {
		release(err == nil) // before replying, so an immediate repeat is seen
	}
	if err != nil {
		log.ErrorContext(r.Context(), "webhook: handler failed", "error", err)
		reply(w, http.StatusInternalServerError, "delivery failed")
		return
	}
	log.DebugContext(r.Context(), "webhook: delivered")
	reply(w, http.StatusOK, "ok")
}

// call runs the function, turning a panic into an error so that the
// delivery is answered 500 and not recorded as done.
func (h *Handler) call(ctx context.Context, e *Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return h.fn(ctx, e)
}

// reply writes {"message": msg} with status code.
func reply(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
