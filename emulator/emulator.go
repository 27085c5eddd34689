// Package emulator is a stateful, spec-faithful Magic Hour API that runs on
// loopback: every operation of the catalog with the real paths, status codes
// and JSON bodies, projects that move queued → rendering → complete on a
// (sped-up) clock, signed upload and download URLs serving real media,
// credits, signed webhooks with retries, deterministic failure markers and
// injectable faults. See README.md in this directory.
package emulator

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Emulator is the emulated API. It is an http.Handler; serve it on any
// listener, or use NewServer / Listen. Signed links embed the base URL set
// with WithBaseURL or SetBaseURL.
type Emulator struct {
	cfg     config
	cat     *catalog.Catalog
	log     *slog.Logger
	clock   Clock
	secret  string
	signKey []byte
	tmpDir  string
	media   *mediaCache
	client  *http.Client

	done      chan struct{}
	wake      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu        sync.Mutex
	baseURL   string
	balance   int64
	tier      string
	saved     []*savedItem
	faults    Faults
	faultRand *mrand.Rand
	idRand    *mrand.Rand
	resets    uint64
	projects  map[string]*project
	assets    map[string]*asset
	stats     Stats
	events    eventHeap
	eventSeq  uint64
}

// Stats counts what the emulator has seen since start or the last Reset.
type Stats struct {
	// Requests counts answers per route and status, e.g.
	// "POST /v1/face-swap 200", "GET /v1/video-projects/{id} 404",
	// "POST /v1/face-swap dropped" (ambiguous-create fault).
	Requests map[string]int `json:"requests"`
	// Creates counts jobs created (face detection included), including the
	// ones whose response was dropped by the AmbiguousCreate fault.
	Creates       int            `json:"creates"`
	CreatesByTool map[string]int `json:"creates_by_tool"`
	// Polls counts GETs per project or face-detection id.
	Polls map[string]int `json:"polls"`
	// WebhooksSent counts deliveries answered 2xx (each duplicate counts);
	// WebhooksFailed counts failed attempts (non-2xx or network error);
	// WebhooksDropped counts deliveries suppressed by the WebhookDrop fault;
	// WebhooksAbandoned counts deliveries given up after the last attempt.
	// WebhooksDispatched counts events handed to delivery, one per event and
	// webhook URL (dropped ones included), as soon as the event happens.
	WebhooksDispatched int `json:"webhooks_dispatched"`
	WebhooksSent       int `json:"webhooks_sent"`
	WebhooksFailed     int `json:"webhooks_failed"`
	WebhooksDropped    int `json:"webhooks_dropped"`
	WebhooksAbandoned  int `json:"webhooks_abandoned"`
	Uploads            int `json:"uploads"`
	Downloads          int `json:"downloads"`
	// Speed is how much faster than real time jobs run (WithSpeed), so
	// clients can scale the times they expect.
	Speed float64 `json:"speed"`
}

func newStats() Stats {
	return Stats{Requests: map[string]int{}, CreatesByTool: map[string]int{}, Polls: map[string]int{}}
}

func (s Stats) clone() Stats {
	c := s
	c.Requests, c.CreatesByTool, c.Polls = map[string]int{}, map[string]int{}, map[string]int{}
	for k, v := range s.Requests {
		c.Requests[k] = v
	}
	for k, v := range s.CreatesByTool {
		c.CreatesByTool[k] = v
	}
	for k, v := range s.Polls {
		c.Polls[k] = v
	}
	return c
}

// New builds an emulator and starts its scheduler. Call Close to stop it.
func New(opts ...Option) (*Emulator, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := cfg.faults.validate(); err != nil {
		return nil, err
	}
	if cfg.seed == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("emulator: random seed: %w", err)
		}
		cfg.seed = int64(binary.LittleEndian.Uint64(b[:])&(1<<62-1)) + 1
	}
	if cfg.webhookSecret == "" {
		s, err := randomHex(24)
		if err != nil {
			return nil, fmt.Errorf("emulator: webhook secret: %w", err)
		}
		cfg.webhookSecret = "whsec_" + s
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("emulator: signing key: %w", err)
	}
	dir, err := os.MkdirTemp("", "hourglass-emulator-*")
	if err != nil {
		return nil, fmt.Errorf("emulator: temp dir: %w", err)
	}
	logger := cfg.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	clock := cfg.clock
	if clock == nil {
		clock = RealClock()
	}
	if cfg.catalog == nil {
		cfg.catalog = catalog.Default()
	}
	if !slices.Contains(catalog.Tiers, cfg.tier) {
		return nil, fmt.Errorf("emulator: unknown tier %q (want one of %s)", cfg.tier, strings.Join(catalog.Tiers, ", "))
	}
	if err := checkSavedItems(cfg.savedItems); err != nil {
		return nil, err
	}
	e := &Emulator{
		cat:     cfg.catalog,
		cfg:     cfg,
		log:     logger,
		clock:   clock,
		secret:  cfg.webhookSecret,
		signKey: key,
		tmpDir:  dir,
		media:   newMediaCache(cfg.seed),
		client:  &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		baseURL: strings.TrimSuffix(cfg.baseURL, "/"),
	}
	e.resetLocked()
	if err := e.restore(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	e.wg.Add(1)
	go e.schedule()
	if cfg.stateFile != "" {
		e.wg.Add(1)
		go e.persistLoop()
	}
	return e, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// resetLocked puts the state back to its initial value; e.mu must be held
// (or e not yet shared).
func (e *Emulator) resetLocked() {
	for _, a := range e.assets {
		if a.disk != "" {
			_ = os.Remove(a.disk)
		}
	}
	e.balance = e.cfg.credits
	e.tier = e.cfg.tier
	e.saved = nil
	for _, it := range e.cfg.savedItems {
		e.saved = append(e.saved, newSavedItem(it))
	}
	e.faults = e.cfg.faults
	seed := uint64(e.cfg.seed)
	e.faultRand = mrand.New(mrand.NewPCG(seed, 0x6661756c7473))
	// Each reset starts a new id stream: a client that remembers ids from
	// before the reset must not see them handed out again.
	e.idRand = mrand.New(mrand.NewPCG(seed, 0x6964730000+e.resets))
	e.resets++
	e.projects = map[string]*project{}
	e.assets = map[string]*asset{}
	e.stats = newStats()
	e.events = nil
}

// SetBaseURL sets the public base URL used in signed upload and download
// links, e.g. "http://127.0.0.1:8787".
func (e *Emulator) SetBaseURL(u string) {
	e.mu.Lock()
	e.baseURL = strings.TrimSuffix(u, "/")
	e.mu.Unlock()
}

// WebhookSecret returns the secret webhooks are signed with.
func (e *Emulator) WebhookSecret() string { return e.secret }

// Close stops the scheduler and every webhook sender and removes uploaded
// files. It is idempotent.
func (e *Emulator) Close() error {
	var err error
	e.closeOnce.Do(func() {
		close(e.done)
		e.wg.Wait()
		e.client.CloseIdleConnections()
		if perr := e.persist(); perr != nil {
			e.log.Warn("emulator: save state at close", "err", perr)
		}
		err = os.RemoveAll(e.tmpDir)
		if err != nil {
			err = fmt.Errorf("emulator: remove temp dir: %w", err)
		}
	})
	return err
}

// Stats returns a copy of the counters.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.stats.clone()
	st.Speed = e.cfg.speed
	return st
}

// Faults returns the current fault injection.
func (e *Emulator) Faults() Faults {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.faults
}

// SetFaults replaces the fault injection at run time.
func (e *Emulator) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	e.mu.Lock()
	e.faults = f
	e.mu.Unlock()
	return nil
}

// Seed returns the seed of the emulator's pseudo-random choices; pass it to
// WithSeed (or --seed) to replay a run.
func (e *Emulator) Seed() int64 { return e.cfg.seed }

// Balance returns the account's credit balance.
func (e *Emulator) Balance() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Settle what has ended so the figure never lags the scheduler.
	e.settleDueLocked(e.clock.Now())
	return e.balance
}

// SetBalance sets the account's credit balance.
func (e *Emulator) SetBalance(n int64) {
	e.mu.Lock()
	e.balance = n
	e.mu.Unlock()
}

// Reset forgets every project, upload and counter and restores the initial
// balance and faults. Webhook deliveries already under way continue.
func (e *Emulator) Reset() {
	e.mu.Lock()
	e.resetLocked()
	e.mu.Unlock()
	e.poke()
}

// ErrNotFound is returned by Cancel for an unknown id.
var ErrNotFound = errors.New("emulator: project not found")

// ErrFinished is returned by Cancel for a project that already ended.
var ErrFinished = errors.New("emulator: project already finished")

// Cancel cancels a queued or rendering project, as Magic Hour's dashboard
// does: the status becomes canceled, credits are refunded and no webhook is
// sent.
func (e *Emulator) Cancel(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.projects[id]
	if p == nil || p.kind == catalog.KindFaceDetection {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	now := e.clock.Now()
	if st := p.statusAt(now); catalog.Terminal(st) {
		e.settleLocked(p, now)
		return fmt.Errorf("%w: %s is %s", ErrFinished, id, st)
	}
	p.canceledAt = now
	e.settleLocked(p, now)
	return nil
}

// --- HTTP plumbing ---

type recorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ServeHTTP answers API, upload, download and admin requests.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	route := e.serve(rec, r)
	status := fmt.Sprint(rec.status)
	if rec.hijacked {
		status = "dropped"
	}
	e.mu.Lock()
	e.stats.Requests[route+" "+status]++
	e.mu.Unlock()
	e.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", status,
		"bytes", rec.bytes, "duration", time.Since(start).Round(time.Microsecond))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"message":"internal error encoding response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// errorBody is the API's error answer: both the newest spec's {code,
// message} and the older {message} clients read it.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// statusCodes is the spec's error code of each status; statuses the spec
// gives no code get a descriptive one.
var statusCodes = map[int]string{
	400: "invalid_request", 401: "unauthorized", 402: "insufficient_credits", 403: "forbidden", 404: "not_found",
	405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 422: "unprocessable_entity",
	429: "rate_limited", 500: "internal_server_error", 502: "bad_gateway", 503: "service_unavailable",
}

// writeError answers status with the spec's code for it.
func writeError(w http.ResponseWriter, status int, msg string) {
	code := statusCodes[status]
	if code == "" {
		code = "error"
	}
	writeCode(w, status, code, msg)
}

// writeCode answers status with an explicit error code
// (plan_upgrade_required, subscription_required, ...).
func writeCode(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Code: code, Message: msg})
}

var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch}

// serve dispatches one request and returns its route label for Stats.
func (e *Emulator) serve(w *recorder, r *http.Request) string {
	path := r.URL.Path
	if strings.HasPrefix(path, "/_emulator/") {
		return e.serveAdmin(w, r)
	}
	op := e.cat.Route(r.Method, path)
	if op == nil {
		// The account and saved items are the emulator's own state: served
		// even on a catalog whose spec leaves them out.
		if d := catalog.Default().Route(r.Method, path); d != nil && (d.Role == catalog.RoleAccount || d.Role == catalog.RoleList) {
			op = d
		}
	}
	if op == nil {
		var allow []string
		for _, m := range methods {
			if e.cat.Route(m, path) != nil {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
			return r.Method + " " + path
		}
		writeError(w, http.StatusNotFound, "Not Found")
		return "unmatched"
	}
	route := op.Method + " " + op.Path
	if !e.authorized(r) {
		writeError(w, http.StatusUnauthorized, "Unauthorized")
		return route
	}
	if e.injectFault(w, r) {
		return route
	}
	switch op.Role {
	case catalog.RoleUploadURLs:
		e.handleUploadURLs(w, r, op)
	case catalog.RoleCreate:
		e.handleCreate(w, r, op)
	case catalog.RoleGet:
		e.handleGet(w, op, projectID(op, path))
	case catalog.RoleDelete:
		e.handleDelete(w, op, projectID(op, path))
	case catalog.RoleAccount:
		e.handleAccount(w)
	case catalog.RoleList:
		e.handleSavedItems(w, r, op)
	default:
		writeError(w, http.StatusNotFound, "Not Found")
	}
	return route
}

func projectID(op *catalog.Operation, path string) string {
	return strings.TrimPrefix(path, strings.TrimSuffix(op.Path, "{id}"))
}

func (e *Emulator) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(h, "Bearer ")
	key = strings.TrimSpace(key)
	if !ok || key == "" || strings.ContainsAny(key, " \t") {
		return false
	}
	if len(e.cfg.apiKeys) == 0 {
		return true
	}
	for _, k := range e.cfg.apiKeys {
		if hmac.Equal([]byte(k), []byte(key)) {
			return true
		}
	}
	return false
}

// injectFault applies latency and error-status faults to an API request and
// reports whether the request has been answered.
func (e *Emulator) injectFault(w *recorder, r *http.Request) bool {
	f := e.Faults()
	if f.Latency > 0 {
		if err := e.sleepCtx(r.Context(), f.Latency); err != nil {
			writeError(w, http.StatusServiceUnavailable, "Service Unavailable: emulator shutting down")
			return true
		}
	}
	switch {
	case e.roll(f.RateLimit):
		ra := f.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		secs := int64((ra + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		writeError(w, http.StatusTooManyRequests, "Too Many Requests: rate limit exceeded, retry later")
	case e.roll(f.ServerError):
		writeError(w, http.StatusInternalServerError, "Internal Server Error")
	case e.roll(f.BadGateway):
		writeError(w, http.StatusBadGateway, "Bad Gateway")
	case e.roll(f.Unavailable):
		writeError(w, http.StatusServiceUnavailable, "Service Unavailable: the service is overloaded, retry later")
	default:
		return false
	}
	return true
}

// sign returns hex HMAC-SHA256 of msg under the emulator's link key.
func (e *Emulator) sign(msg string) string {
	m := hmac.New(sha256.New, e.signKey)
	io.WriteString(m, msg)
	return hex.EncodeToString(m.Sum(nil))
}

// poke wakes the scheduler.
func (e *Emulator) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// closing reports whether Close has begun.
func (e *Emulator) closing() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// Catalog returns the catalog the emulator serves.
func (e *Emulator) Catalog() *catalog.Catalog { return e.cat }
