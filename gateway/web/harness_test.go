package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/gateway/web"
	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
)

// lateHandler lets the server start before the dashboard exists (the
// emulator needs the webhook URL first).
type lateHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.RLock()
	h := l.h
	l.mu.RUnlock()
	if h == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

// env is a gateway with its dashboard mounted as `hourglass serve` does,
// on SQLite, against the in-process emulator.
type env struct {
	t         *testing.T
	srv       *httptest.Server
	emu       *emulator.Server
	gw        *gateway.Gateway
	store     gateway.Store
	storage   *gateway.FileStorage
	adminKey  string
	tenantKey string
}

func newEnv(t *testing.T, speed float64) *env {
	t.Helper()
	return newEnvWith(t, speed, nil)
}

// newEnvWith is newEnv with edit applied to the gateway's Config.
func newEnvWith(t *testing.T, speed float64, edit func(*gateway.Config)) *env {
	t.Helper()
	front := &lateHandler{}
	e := &env{t: t, srv: httptest.NewServer(front)}
	t.Cleanup(e.srv.Close)
	secret := "whsec_dashboard_test"
	e.emu = emulator.NewServer(t, emulator.WithSpeed(speed), emulator.WithWebhookURL(e.srv.URL+"/hooks/magichour"),
		emulator.WithWebhookSecret(secret), emulator.WithWebhookRetry(3, 20*time.Millisecond))
	up, err := magichour.NewClient(magichour.WithAPIKey(e.emu.APIKey), magichour.WithBaseURL(e.emu.URL),
		magichour.WithRetry(magichour.RetryPolicy{MaxAttempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e.storage, err = gateway.NewFileStorage(filepath.Join(dir, "outputs"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{Storage: e.storage, Upstream: up, WebhookSecrets: []string{secret},
		LeaseDuration: 2 * time.Second, IdlePoll: 50 * time.Millisecond, Speed: speed,
		MinPollInterval: 20 * time.Millisecond, MaxPollInterval: 500 * time.Millisecond,
		RetryBase: 10 * time.Millisecond, RetryMax: 200 * time.Millisecond, ShutdownGrace: 2 * time.Second, SSEPoll: 100 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	e.gw, err = gateway.Open(context.Background(), gateway.Options{Config: cfg, DB: "sqlite://" + filepath.Join(dir, "hourglass.db")})
	if err != nil {
		t.Fatal(err)
	}
	e.store = e.gw.Store()
	t.Cleanup(func() {
		front.mu.Lock()
		front.h = nil
		front.mu.Unlock()
		e.gw.Close()
	})
	e.adminKey, e.tenantKey = e.gw.Keys().AdminKey, e.gw.Keys().TenantKey
	front.mu.Lock()
	front.h = web.New(e.gw, web.Options{API: e.gw.Handler()})
	front.mu.Unlock()
	return e
}

// api calls the JSON API with a key.
func (e *env) api(method, path, key string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

// newTenant creates a tenant and returns its key.
func (e *env) newTenant(name string) string {
	e.t.Helper()
	var out struct {
		APIKey string `json:"api_key"`
	}
	if code := e.api("POST", "/api/admin/tenants", e.adminKey, map[string]any{"name": name}, &out); code != http.StatusCreated {
		e.t.Fatalf("create tenant: %d", code)
	}
	return out.APIKey
}

// submit posts a job through the API (tenant key) and returns its id.
func (e *env) submit(key, tool string, edit func(map[string]any)) string {
	e.t.Helper()
	params := catalog.Lookup(tool).ExampleBody()
	if edit != nil {
		edit(params)
	}
	var out struct {
		ID string `json:"id"`
	}
	if code := e.api("POST", "/api/jobs", key, map[string]any{"tool": tool, "params": params}, &out); code != http.StatusAccepted {
		e.t.Fatalf("submit %s: %d", tool, code)
	}
	return out.ID
}

// wait polls the store until the job is terminal.
func (e *env) wait(id string) *gateway.Job {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := e.store.Job(context.Background(), "", id)
		if err != nil {
			e.t.Fatal(err)
		}
		if j.Status.Terminal() {
			return j
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s still %s", id, j.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is a cookie-keeping HTTP client that does not follow redirects.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: e.t, base: e.srv.URL, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.hc.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (c *client) postForm(path string, v url.Values) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.hc.PostForm(c.base+path, v)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, html string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no csrf token in page: %.300s", html)
	}
	return m[1]
}

// login signs in with key and returns the session's CSRF token.
func (c *client) login(key string) string {
	c.t.Helper()
	_, page := c.get("/login")
	resp, body := c.postForm("/login", url.Values{"csrf": {csrfOf(c.t, page)}, "key": {key}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("login: %d %.300s", resp.StatusCode, body)
	}
	resp, page = c.get("/")
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("after login: %d", resp.StatusCode)
	}
	return csrfOf(c.t, page)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
