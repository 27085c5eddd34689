package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
)

const defaultTestPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// eachDB runs fn against a fresh SQLite file and a fresh PostgreSQL schema.
func eachDB(t *testing.T, fn func(t *testing.T, dbURL string)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, "sqlite://"+filepath.Join(t.TempDir(), "hourglass.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, postgresURL(t))
	})
}

// postgresURL creates a schema for the test (dropped on cleanup) and
// returns a DSN whose search_path points at it; it skips when no server
// answers.
func postgresURL(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("HOURGLASS_TEST_POSTGRES")
	if dsn == "" {
		dsn = defaultTestPostgres
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("postgres DSN: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Skipf("PostgreSQL not reachable at %s: skipping", dsn)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "hgtest_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		if _, err := db.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

// swapHandler lets the test server outlive one gateway (restarts).
type swapHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (s *swapHandler) set(h http.Handler) { s.mu.Lock(); s.h = h; s.mu.Unlock() }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.h
	s.mu.RUnlock()
	if h == nil {
		http.Error(w, "gateway down", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

type harness struct {
	t     *testing.T
	dbURL string
	emu   *emulator.Server
	srv   *httptest.Server
	front *swapHandler
	store gateway.Store
	// storeOwned: the gateway opened the store (Open) and closes it.
	storeOwned bool
	storage    *gateway.FileStorage
	gw         *gateway.Gateway
	cfg        gateway.Config
	adminKey   string
	tenantKey  string
}

type hopts struct {
	speed   float64
	faults  emulator.Faults
	workers int
	expect  float64 // ExpectedFactor
	noStart bool
	// denyPrivateCallbacks keeps the SSRF guard on (tests' receivers are
	// on 127.0.0.1, so it is off by default here).
	denyPrivateCallbacks bool
	cfg                  func(*gateway.Config)
	emu                  []emulator.Option // more emulator options (a catalog, a tier)
}

const testSpeed = 2000

func newHarness(t *testing.T, dbURL string, o hopts) *harness {
	t.Helper()
	if o.speed == 0 {
		o.speed = testSpeed
	}
	if o.workers == 0 {
		o.workers = 4
	}
	h := &harness{t: t, dbURL: dbURL, front: &swapHandler{}}
	h.srv = httptest.NewServer(h.front)
	t.Cleanup(h.srv.Close)
	secret := "whsec_test_secret"
	h.emu = emulator.NewServer(t, append([]emulator.Option{
		emulator.WithSpeed(o.speed),
		emulator.WithFaults(o.faults),
		emulator.WithOutputSize(24 << 10),
		emulator.WithWebhookURL(h.srv.URL + "/hooks/magichour"),
		emulator.WithWebhookSecret(secret),
		emulator.WithWebhookRetry(3, 20*time.Millisecond),
	}, o.emu...)...)
	up, err := magichour.NewClient(magichour.WithAPIKey(h.emu.APIKey), magichour.WithBaseURL(h.emu.URL),
		magichour.WithRetry(magichour.RetryPolicy{MaxAttempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	h.storage, err = gateway.NewFileStorage(filepath.Join(t.TempDir(), "outputs"))
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = gateway.Config{
		Storage: h.storage, Upstream: up, WebhookSecrets: []string{secret},
		Workers: o.workers, LeaseDuration: 2 * time.Second, IdlePoll: 50 * time.Millisecond,
		Speed: o.speed, ExpectedFactor: o.expect, MinPollInterval: 10 * time.Millisecond, MaxPollInterval: 200 * time.Millisecond,
		RetryBase: 10 * time.Millisecond, RetryMax: 200 * time.Millisecond, ShutdownGrace: 3 * time.Second,
		SSEPoll: 20 * time.Millisecond, UpstreamRPS: -1,
		AllowPrivateCallbacks: !o.denyPrivateCallbacks, CallbackRetryBase: 20 * time.Millisecond, CallbackRetryMax: 100 * time.Millisecond,
		ThrottleRetry: 20 * time.Millisecond,
	}
	if o.cfg != nil {
		o.cfg(&h.cfg)
	}
	t.Cleanup(h.stop)
	if o.noStart {
		// The test works on the store first, as before a process starts.
		h.openStore()
		admin, tenant, created, err := gateway.Bootstrap(context.Background(), h.store)
		if err != nil || !created {
			t.Fatalf("bootstrap: created=%v err=%v", created, err)
		}
		h.adminKey, h.tenantKey = admin, tenant
		return h
	}
	h.start()
	if k := h.gw.Keys(); !k.Created {
		t.Fatal("bootstrap: the first Open did not create the keys")
	}
	return h
}

func (h *harness) openStore() {
	h.t.Helper()
	s, err := gateway.OpenStore(context.Background(), h.dbURL)
	if err != nil {
		h.t.Fatalf("open store: %v", err)
	}
	h.store = s
}

// start opens the gateway as a process does (gateway.Open); a store the
// test opened itself is used as is, else Open opens and owns one.
func (h *harness) start() {
	h.t.Helper()
	o := gateway.Options{Config: h.cfg, DB: h.dbURL}
	o.Config.Store = h.store
	gw, err := gateway.Open(context.Background(), o)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.store == nil {
		h.store, h.storeOwned = gw.Store(), true
	}
	if k := gw.Keys(); k.Created {
		h.adminKey, h.tenantKey = k.AdminKey, k.TenantKey
	}
	h.gw = gw
	h.front.set(gw.Handler())
}

// stop closes the gateway and its store, like a process exiting.
func (h *harness) stop() {
	h.front.set(nil)
	if h.gw != nil {
		h.gw.Close()
		h.gw = nil
	}
	if h.store != nil && !h.storeOwned {
		h.store.Close()
	}
	h.store, h.storeOwned = nil, false
}

// do sends an API request with key and decodes a JSON answer into out.
func (h *harness) do(method, path, key string, body any, out any) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: %d, not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, raw
}

type jobView struct {
	ID             string          `json:"id"`
	Tool           string          `json:"tool"`
	Status         string          `json:"status"`
	UpstreamID     string          `json:"upstream_id"`
	UpstreamStatus string          `json:"upstream_status"`
	IdempotencyKey string          `json:"idempotency_key"`
	Metadata       json.RawMessage `json:"metadata"`
	Polls          int             `json:"polls"`
	Error          *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Outputs []struct {
		Index  int    `json:"index"`
		URL    string `json:"url"`
		Stored bool   `json:"stored"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	} `json:"outputs"`
}

// params returns a valid request body for tool, with name set when the
// tool takes one (failure markers go in the name).
func params(t *testing.T, tool, name string) map[string]any {
	t.Helper()
	op := catalog.Lookup(tool)
	if op == nil {
		t.Fatalf("no tool %s", tool)
	}
	body := op.ExampleBody()
	if name != "" && op.Request.Prop("name") != nil {
		body["name"] = name
	}
	return body
}

// submit posts a job and expects 202.
func (h *harness) submit(tool, name, idem string) jobView {
	h.t.Helper()
	req := map[string]any{"tool": tool, "params": params(h.t, tool, name)}
	if idem != "" {
		req["idempotency_key"] = idem
	}
	var j jobView
	code, raw := h.do("POST", "/api/jobs", h.tenantKey, req, &j)
	if code != http.StatusAccepted {
		h.t.Fatalf("submit %s: %d %s", tool, code, raw)
	}
	return j
}

// wait polls the API until the job is terminal and returns it.
func (h *harness) wait(id string) jobView {
	h.t.Helper()
	return h.waitAs(h.tenantKey, id)
}

// waitAs is wait with another key (another tenant's, or the admin's).
func (h *harness) waitAs(key, id string) jobView {
	h.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		var j jobView
		code, raw := h.do("GET", "/api/jobs/"+id, key, nil, &j)
		if code != http.StatusOK {
			h.t.Fatalf("get %s: %d %s", id, code, raw)
		}
		switch j.Status {
		case "stored", "error", "canceled", "create_outcome_unknown":
			return j
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("job %s still %s after 45s", id, j.Status)
		}
		time.Sleep(15 * time.Millisecond)
	}
}

// events returns a job's event types in order (read through the store).
func (h *harness) events(id string) []string {
	h.t.Helper()
	evs, err := h.store.Events(context.Background(), id, 0, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// checkOutputs downloads every output through the API and verifies size
// and sha256.
func (h *harness) checkOutputs(j jobView) {
	h.t.Helper()
	if len(j.Outputs) == 0 {
		h.t.Fatalf("job %s (%s) has no outputs", j.ID, j.Tool)
	}
	for _, o := range j.Outputs {
		if !o.Stored || o.URL == "" {
			h.t.Fatalf("job %s output %d not stored: %+v", j.ID, o.Index, o)
		}
		code, body := h.do("GET", fmt.Sprintf("/api/jobs/%s/outputs/%d", j.ID, o.Index), h.tenantKey, nil, nil)
		if code != http.StatusOK {
			h.t.Fatalf("output %d of %s: %d", o.Index, j.ID, code)
		}
		if int64(len(body)) != o.Size || sha(body) != o.SHA256 {
			h.t.Fatalf("output %d of %s: got %d bytes sha %s, job says %d %s", o.Index, j.ID, len(body), sha(body), o.Size, o.SHA256)
		}
	}
}
