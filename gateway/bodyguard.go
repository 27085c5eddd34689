package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Slow bodies (issue 11 item 2): http.Server's ReadHeaderTimeout bounds the
// headers only, and a server-wide ReadTimeout would also cut off uploads
// and cancel event streams (the server's background read after a body
// fails on the same deadline). So the deadline is per route, set on the
// connection when a request with a body arrives:
//
//   - a small body (JSON, forms, webhooks) must arrive within
//     BodyReadTimeout (default 30s), else the read fails and the
//     connection is closed;
//   - an upload gets BodyReadTimeout plus one second per UploadMinRate
//     bytes received: the deadline moves as bytes arrive, so a fast upload
//     of any size passes and a trickle is cut off;
//   - routes that read a body before any credential is checked
//     (Magic Hour's webhooks, the dashboard's sign-in) hold one of
//     MaxUnauthBodies slots while they read; when all are taken the request
//     is answered 503 at once and its connection closed.
//
// Once the body is read to its end the deadline is cleared.

// bodyClass is how a route's body is guarded.
type bodyClass int

const (
	bodySmall bodyClass = iota
	bodyUpload
	bodyUnauth // small, read before any credential check
)

// classify names the routes that are not small authenticated bodies: the
// gateway's own and the dashboard's (gateway/web), which wraps its routes
// in GuardBodies too.
func classify(r *http.Request) bodyClass {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && (p == "/hooks/magichour" || p == "/login"):
		return bodyUnauth
	case r.Method == http.MethodPost && (p == "/api/uploads" || strings.HasPrefix(p, "/submit/")),
		r.Method == http.MethodPut && strings.HasPrefix(p, "/v1/files/uploads/"):
		return bodyUpload
	}
	return bodySmall
}

type guardedKey struct{}

// errBodyTimeout is a body read cut off by its deadline.
var errBodyTimeout = errors.New("request body not received in time")

// guardedBody moves or clears the connection's read deadline as the body
// is read.
type guardedBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	start    time.Time
	timeout  time.Duration
	minRate  int64 // bytes per second; 0: fixed deadline
	read     int64
	nextMove int64
	done     bool
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	if b.minRate > 0 && b.read >= b.nextMove && !b.done {
		b.nextMove = b.read + b.minRate/4 // move it every quarter second's worth
		_ = b.rc.SetReadDeadline(b.start.Add(b.timeout + time.Duration(b.read*int64(time.Second)/b.minRate)))
	}
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("%w (%s): %w", errBodyTimeout, b.limit(), err)
	}
	return n, err
}

func (b *guardedBody) limit() string {
	if b.minRate > 0 {
		return fmt.Sprintf("the limit is %s plus 1s per %d bytes", b.timeout, b.minRate)
	}
	return fmt.Sprintf("the limit is %s", b.timeout)
}

// GuardRequests is what the dashboard puts in front of its routes: the
// body guard and the 400 for NUL or invalid UTF-8 in path and query (ids
// reach SQL). Handler applies the same.
func (g *Gateway) GuardRequests(next http.Handler) http.Handler {
	return g.GuardBodies(textGuard(next))
}

// GuardBodies applies the per-route body deadlines and the cap on
// unauthenticated bodies to next. Handler applies it; the dashboard wraps
// its own routes with it (a request passes the guard once).
func (g *Gateway) GuardBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.Context().Value(guardedKey{}) != nil {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		class := classify(r)
		if class == bodyUnauth {
			select {
			case g.unauthSlots <- struct{}{}:
				defer func() { <-g.unauthSlots }()
			default:
				// Refuse without reading: the deadline in the past makes the
				// server's discard of the unread body fail at once, so the
				// connection is closed rather than kept for a trickle.
				_ = rc.SetReadDeadline(time.Now())
				w.Header().Set("Connection", "close")
				w.Header().Set("Retry-After", "1")
				msg := fmt.Sprintf("too many unauthenticated request bodies in flight (the limit is %d); retry", cap(g.unauthSlots))
				if _, logged := w.(*statusRecorder); !logged { // the dashboard's routes: log it here, once
					g.log.Info("gateway: request refused", "method", r.Method, "path", r.URL.Path, "status", http.StatusServiceUnavailable,
						"code", "busy", "message", msg, "remote", r.RemoteAddr)
				}
				writeError(w, http.StatusServiceUnavailable, "busy", msg, nil)
				return
			}
		}
		now := time.Now() // a connection deadline: wall time, not the injectable clock
		b := &guardedBody{ReadCloser: r.Body, rc: rc, start: now, timeout: g.cfg.BodyReadTimeout}
		if class == bodyUpload {
			b.minRate = g.cfg.UploadMinRate
		}
		if err := rc.SetReadDeadline(now.Add(b.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			g.log.Warn("gateway: set body read deadline", "err", err)
		}
		r2 := r.WithContext(context.WithValue(r.Context(), guardedKey{}, true))
		r2.Body = b
		next.ServeHTTP(w, r2)
	})
}

// readLimited reads a request body of at most limit bytes; on failure it
// answers (413 over the limit, 408 past the read deadline, else 400) and
// returns false.
func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		return body, true
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body larger than %d bytes", limit), nil)
	case errors.Is(err, errBodyTimeout):
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestTimeout, "body_timeout", err.Error(), nil)
	default:
		writeError(w, http.StatusBadRequest, "bad_body", "could not read the request body", nil)
	}
	return nil, false
}
