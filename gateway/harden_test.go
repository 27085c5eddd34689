package gateway_test

// Regression tests of issue 11, items 1 to 7 (security and resource abuse).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

// nested returns depth levels of {"a": ...} around a leaf.
func nested(depth int, leaf string) string {
	return strings.Repeat(`{"a":`, depth) + leaf + strings.Repeat("}", depth)
}

// Item 1: params and metadata nesting deeper than the limit are refused at
// submit, naming the field and the limit; what is accepted is stored and
// answered compact (no re-indentation that grows with depth).
func TestNestedJSONIsBounded(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{workers: -1})
		p := params(t, "ai-image-generator", "")
		deep := json.RawMessage(nested(gateway.MaxJSONDepth+8, "1"))
		p["style"] = deep
		code, raw := h.do("POST", "/api/jobs", h.tenantKey, map[string]any{"tool": "ai-image-generator", "params": p}, nil)
		if code != http.StatusBadRequest || !strings.Contains(string(raw), `"field":"params"`) || !strings.Contains(string(raw), "the limit is 32 levels") {
			t.Fatalf("deep params: %d %s", code, raw)
		}
		code, raw = h.do("POST", "/api/jobs", h.tenantKey, map[string]any{"tool": "ai-image-generator",
			"params": params(t, "ai-image-generator", ""), "metadata": deep}, nil)
		if code != http.StatusBadRequest || !strings.Contains(string(raw), `"field":"metadata"`) || !strings.Contains(string(raw), "32 levels") {
			t.Fatalf("deep metadata: %d %s", code, raw)
		}
		big := map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", ""),
			"metadata": map[string]string{"x": strings.Repeat("y", gateway.MaxMetadataBytes)}}
		if code, raw := h.do("POST", "/api/jobs", h.tenantKey, big, nil); code != http.StatusBadRequest || !strings.Contains(string(raw), "16384 bytes") {
			t.Fatalf("large metadata: %d %s", code, raw)
		}
		if n, _ := h.store.CountJobsByStatus(t.Context()); n[gateway.StatusPending] != 0 {
			t.Fatalf("refused submissions left jobs: %v", n)
		}
		// Within the limit: accepted, and answered compact.
		ok := json.RawMessage(nested(gateway.MaxJSONDepth-1, `[1,2,3]`))
		var j jobView
		code, raw = h.do("POST", "/api/jobs", h.tenantKey, map[string]any{"tool": "ai-image-generator",
			"params": params(t, "ai-image-generator", ""), "metadata": ok}, &j)
		if code != http.StatusAccepted {
			t.Fatalf("metadata at the limit: %d %s", code, raw)
		}
		code, raw = h.do("GET", "/api/jobs/"+j.ID, h.tenantKey, nil, &j)
		if code != http.StatusOK || strings.Contains(string(raw), "\n ") || string(j.Metadata) != string(ok) {
			t.Fatalf("get: %d, metadata %s, body %q", code, j.Metadata, raw)
		}
	})
}

// The dashboard indents small JSON only.
func TestPrettyJSONBounded(t *testing.T) {
	t.Parallel()
	if got := gateway.PrettyJSON([]byte(`{"a":[1]}`)); got != "{\n  \"a\": [\n    1\n  ]\n}" {
		t.Fatalf("small: %q", got)
	}
	deep := nested(200, "1")
	if got := gateway.PrettyJSON([]byte(deep)); got != deep {
		t.Fatalf("deep JSON was re-indented (%d bytes from %d)", len(got), len(deep))
	}
	long := `{"a":[` + strings.Repeat("1,", 20000) + `1]}`
	if got := gateway.PrettyJSON([]byte(long)); got != long {
		t.Fatalf("large JSON was re-indented (%d bytes from %d)", len(got), len(long))
	}
}

// Item 3: absurd and non-finite numbers are refused before estimating; the
// estimate saturates instead of wrapping to 1 credit.
func TestEstimateOverflowRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ params, want string }{
		{`{"end_seconds":1e19,"fps":30}`, "params.end_seconds"},
		{`{"end_seconds":5,"fps":1e300}`, "params.fps"},
		{`{"end_seconds":5,"fps":1e400}`, "params.fps"},
	} {
		if got := gateway.EstimateCredits("animation", json.RawMessage(tc.params)); got < 100 {
			t.Errorf("EstimateCredits(%s) = %d: wrapped below the 100-credit budget", tc.params, got)
		}
	}
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{workers: -1})
		key := h.newTenant(map[string]any{"name": "budget", "credit_budget": 100})
		for _, tc := range []struct{ field, value string }{
			{"end_seconds", "1e19"}, {"fps", "1e300"}, {"fps", "1e400"}, {"end_seconds", "-1e19"},
		} {
			p := params(t, "animation", "")
			p[tc.field] = json.RawMessage(tc.value)
			code, raw := h.do("POST", "/api/jobs", key, map[string]any{"tool": "animation", "params": p}, nil)
			if code != http.StatusBadRequest || !strings.Contains(string(raw), `"field":"params.`+tc.field+`"`) {
				t.Fatalf("%s=%s: %d %s", tc.field, tc.value, code, raw)
			}
		}
		// The drop-in API takes the same path.
		code, raw := h.do("POST", "/v1/animation", key, `{"end_seconds":1e19,"fps":30,"height":512,"width":512,"style":{"art_style":"Painterly Illustration","camera_effect":"Simple Zoom In","prompt_type":"custom","prompt":"x"},"assets":{"audio_source":"none"}}`, nil)
		if code != http.StatusBadRequest || !strings.Contains(string(raw), "end_seconds") {
			t.Fatalf("drop-in end_seconds=1e19: %d %s", code, raw)
		}
		ts, err := h.store.ListTenants(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range ts {
			if tn.CreditsUsed != 0 {
				t.Fatalf("tenant %s has %d credits reserved after refusals", tn.Name, tn.CreditsUsed)
			}
		}
	})
}

// Item 7: a JSON-escaped upload reference is checked like a plain one.
func TestEscapedUploadRefChecked(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{workers: -1})
		png := []byte("\x89PNG\r\n\x1a\n" + strings.Repeat("x", 64))
		var up struct {
			FilePath string `json:"file_path"`
		}
		if code, raw := h.do("POST", "/api/uploads?extension=png", h.tenantKey, png, &up); code != http.StatusCreated {
			t.Fatalf("upload: %d %s", code, raw)
		}
		other := h.newTenant(map[string]any{"name": "other"})
		escaped := `\u0061` + strings.TrimPrefix(up.FilePath, "a")
		body := `{"tool":"image-to-video","params":{"end_seconds":5,"assets":{"image_file_path":"` + escaped + `"}}}`
		code, raw := h.do("POST", "/api/jobs", other, body, nil)
		if code != http.StatusBadRequest || !strings.Contains(string(raw), "image_file_path") {
			t.Fatalf("other tenant's escaped upload reference: %d %s", code, raw)
		}
		escaped = strings.ReplaceAll(up.FilePath, "/", `\/`)
		body = `{"tool":"image-to-video","params":{"end_seconds":5,"assets":{"image_file_path":"` + escaped + `"}}}`
		if code, raw := h.do("POST", "/api/jobs", other, body, nil); code != http.StatusBadRequest {
			t.Fatalf("other tenant's \\/-escaped upload reference: %d %s", code, raw)
		}
	})
}

// Item 7: NUL and invalid UTF-8 in ids, cursors and idempotency keys are
// 400s (PostgreSQL answered 500).
func TestInvalidTextIs400(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{workers: -1})
		p, _ := json.Marshal(params(t, "ai-image-generator", ""))
		for _, tc := range []struct{ method, path, body string }{
			{"GET", "/api/jobs/job_%00x", ""},
			{"GET", "/api/jobs/job_%ffx", ""},
			{"DELETE", "/api/jobs/job_%00x", ""},
			{"GET", "/api/jobs?cursor=%00", ""},
			{"GET", "/api/jobs?cursor=%fe%ff", ""},
			{"GET", "/v1/image-projects/%00", ""},
			{"POST", "/api/jobs", `{"tool":"ai-image-generator","idempotency_key":"a\u0000b","params":` + string(p) + `}`},
			{"POST", "/api/jobs", `{"tool":"ai-image-generator","callback_url":"http://x/\u0000","params":` + string(p) + `}`},
		} {
			code, raw := h.do(tc.method, tc.path, h.tenantKey, tc.body, nil)
			if code != http.StatusBadRequest {
				t.Errorf("%s %s %s: %d %s", tc.method, tc.path, tc.body, code, raw)
			}
		}
		req, _ := http.NewRequest("POST", h.srv.URL+"/api/jobs", strings.NewReader(`{"tool":"ai-image-generator","params":`+string(p)+`}`))
		req.Header.Set("Authorization", "Bearer "+h.tenantKey)
		req.Header.Set("Idempotency-Key", "k\xff\xfe")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("Idempotency-Key with invalid UTF-8: %d", resp.StatusCode)
		}
	})
}

// Item 4: every IPv6 form that embeds an internal IPv4, and the special
// ranges the first guard missed, are refused at submit (literal addresses:
// nothing is resolved or dialed).
func TestSSRFFormsRefusedAtSubmit(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{workers: -1, denyPrivateCallbacks: true})
		for _, host := range []string{"[64:ff9b::7f00:1]", "[64:ff9b:1::a9fe:a9fe]", "[::ffff:0:7f00:1]", "[::ffff:127.0.0.1]",
			"[2002:a9fe:a9fe::]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]", "[::7f00:1]", "[fec0::1]", "240.0.0.1", "255.255.255.255"} {
			req := map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", ""), "callback_url": "http://" + host + "/hook"}
			code, raw := h.do("POST", "/api/jobs", h.tenantKey, req, nil)
			if code != http.StatusBadRequest || !strings.Contains(string(raw), `"field":"callback_url"`) || !strings.Contains(string(raw), "not a public address") {
				t.Errorf("callback_url %s: %d %s", host, code, raw)
			}
		}
		if n, _ := h.store.CountJobsByStatus(t.Context()); n[gateway.StatusPending] != 0 {
			t.Fatalf("refused submissions left jobs: %v", n)
		}
	})
}

// Item 5: a stored output is served with nosniff, a sandboxing CSP and a
// file name made of the job id and index (curl -OJ saved "0").
func TestOutputServedSafely(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{})
		j := h.wait(h.submit("ai-image-generator", "", "").ID)
		if j.Status != "stored" {
			t.Fatalf("job %s", j.Status)
		}
		for _, q := range []string{"", "?download=1"} {
			req, _ := http.NewRequest("GET", h.srv.URL+"/api/jobs/"+j.ID+"/outputs/0"+q, nil)
			req.Header.Set("Authorization", "Bearer "+h.tenantKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			disp := resp.Header.Get("Content-Disposition")
			want := "inline; filename=" + j.ID + "-0.png"
			if q != "" {
				want = "attachment; filename=" + j.ID + "-0.png"
			}
			if resp.StatusCode != 200 || resp.Header.Get("X-Content-Type-Options") != "nosniff" || disp != want ||
				!strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "sandbox; default-src 'none'") || resp.Header.Get("Content-Type") != "image/png" {
				t.Fatalf("output%s: %d %v", q, resp.StatusCode, resp.Header)
			}
		}
	})
}

// slowRequest opens a connection, sends a request's headers announcing
// size bytes of body and the first prefix of it, and returns the
// connection (the rest never comes).
func slowRequest(t *testing.T, h *harness, method, path, auth string, size int, prefix []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", method, path, size)
	if auth != "" {
		head += "Authorization: Bearer " + auth + "\r\n"
	}
	if _, err := conn.Write(append([]byte(head+"\r\n"), prefix...)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// closedWithin reads what the server answers until it closes the
// connection; it fails when that takes longer than limit.
func closedWithin(t *testing.T, conn net.Conn, limit time.Duration) string {
	t.Helper()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(limit))
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s (answer so far %q)", limit, got)
	}
	return string(got)
}

// Item 2: a body that does not arrive within the read deadline ends its
// connection (webhooks, API bodies, uploads below the minimum rate), and
// unauthenticated bodies beyond the cap are refused at once while
// /healthz keeps answering.
func TestSlowBodiesCutOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sqlite://"+t.TempDir()+"/slow.db", hopts{workers: -1, cfg: func(c *gateway.Config) {
		c.BodyReadTimeout, c.UploadMinRate = 300*time.Millisecond, 1<<20
	}})
	for _, tc := range []struct{ method, path, auth string }{
		{"POST", "/hooks/magichour", ""},
		{"POST", "/api/jobs", h.tenantKey},
		{"POST", "/api/uploads?extension=png", h.tenantKey},
	} {
		conn := slowRequest(t, h, tc.method, tc.path, tc.auth, 4<<20, []byte("\x89PNG\r\n\x1a\n{"))
		if got := closedWithin(t, conn, 15*time.Second); !strings.Contains(got, "408") || !strings.Contains(got, "the limit is 300ms") {
			t.Errorf("%s %s: answer %q", tc.method, tc.path, got)
		}
	}
}

func TestUnauthBodiesCapped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sqlite://"+t.TempDir()+"/cap.db", hopts{workers: -1, cfg: func(c *gateway.Config) {
		c.BodyReadTimeout, c.MaxUnauthBodies = time.Minute, 2
	}})
	for range 2 {
		slowRequest(t, h, "POST", "/hooks/magichour", "", 100, []byte("{"))
	}
	waitFor(t, "2 webhook bodies in flight", func() bool { return gateway.UnauthBodiesInFlight(h.gw) == 2 })
	third := slowRequest(t, h, "POST", "/hooks/magichour", "", 100, []byte("{"))
	if got := closedWithin(t, third, 15*time.Second); !strings.Contains(got, "503") || !strings.Contains(got, "the limit is 2") {
		t.Fatalf("third webhook body: %q", got)
	}
	if code, raw := h.do("GET", "/healthz", "", nil, nil); code != 200 {
		t.Fatalf("healthz: %d %s", code, raw)
	}
	// Authenticated routes are not held up by the cap.
	if code, raw := h.do("GET", "/api/jobs", h.tenantKey, nil, nil); code != 200 {
		t.Fatalf("list: %d %s", code, raw)
	}
}

// Item 6: key rotation with an overlap window, tenant disable/enable,
// the callback secret read and rotated by the admin, server-side sessions
// ended by sign-out, rotation, disable and revocation.
func TestRevocation(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{workers: -1})
		ctx := t.Context()
		j := h.submit("ai-image-generator", "", "")
		list := func(key string) int { code, _ := h.do("GET", "/api/jobs", key, nil, nil); return code }
		var tenants struct {
			Tenants []struct {
				ID       string `json:"id"`
				Name     string `json:"name"`
				Disabled bool   `json:"disabled"`
			} `json:"tenants"`
		}
		h.do("GET", "/api/admin/tenants", h.adminKey, nil, &tenants)
		tid := tenants.Tenants[0].ID

		// Sessions: a session works until it is ended.
		sess, err := h.gw.CreateSession(ctx, gateway.HashKey(h.tenantKey), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if p, err := h.gw.SessionPrincipal(ctx, sess); err != nil || p.Tenant == nil || p.Tenant.ID != tid {
			t.Fatalf("session: %+v %v", p, err)
		}
		if err := h.gw.EndSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if _, err := h.gw.SessionPrincipal(ctx, sess); !errors.Is(err, gateway.ErrNotFound) {
			t.Fatalf("session after sign-out: %v", err)
		}

		// Rotation with an overlap: both keys work; the session ends.
		sess, _ = h.gw.CreateSession(ctx, gateway.HashKey(h.tenantKey), time.Now().Add(time.Hour))
		var rot struct {
			APIKey string     `json:"api_key"`
			Until  *time.Time `json:"previous_key_valid_until"`
		}
		if code, raw := h.do("POST", "/api/admin/tenants/"+tid+"/rotate-key", h.adminKey, `{"overlap_seconds":3600}`, &rot); code != 200 || rot.APIKey == "" || rot.Until == nil {
			t.Fatalf("rotate: %d %s", code, raw)
		}
		if list(h.tenantKey) != 200 || list(rot.APIKey) != 200 {
			t.Fatalf("during the overlap: old %d new %d", list(h.tenantKey), list(rot.APIKey))
		}
		if _, err := h.gw.SessionPrincipal(ctx, sess); !errors.Is(err, gateway.ErrNotFound) {
			t.Fatalf("session after key rotation: %v", err)
		}
		// Rotation without overlap: only the newest key works.
		first, second := h.tenantKey, rot.APIKey
		if code, raw := h.do("POST", "/api/admin/tenants/"+tid+"/rotate-key", h.adminKey, `{"overlap_seconds":0}`, &rot); code != 200 {
			t.Fatalf("rotate: %d %s", code, raw)
		}
		if list(first) != 401 || list(second) != 401 || list(rot.APIKey) != 200 {
			t.Fatalf("after rotation without overlap: first %d second %d new %d", list(first), list(second), list(rot.APIKey))
		}
		if code, raw := h.do("POST", "/api/admin/tenants/"+tid+"/rotate-key", h.adminKey, `{"overlap_seconds":-1}`, nil); code != 400 || !strings.Contains(string(raw), "overlap_seconds") {
			t.Fatalf("negative overlap: %d %s", code, raw)
		}
		key := rot.APIKey

		// Disable: 403 on the API, no new session, jobs stay; enable again.
		sess, _ = h.gw.CreateSession(ctx, gateway.HashKey(key), time.Now().Add(time.Hour))
		if code, raw := h.do("POST", "/api/admin/tenants/"+tid+"/disable", h.adminKey, nil, nil); code != 200 || !strings.Contains(string(raw), `"disabled":true`) {
			t.Fatalf("disable: %d %s", code, raw)
		}
		if code, raw := h.do("GET", "/api/jobs/"+j.ID, key, nil, nil); code != 403 || !strings.Contains(string(raw), "tenant_disabled") {
			t.Fatalf("disabled tenant: %d %s", code, raw)
		}
		if _, err := h.gw.SessionPrincipal(ctx, sess); !errors.Is(err, gateway.ErrNotFound) {
			t.Fatalf("session after disable: %v", err)
		}
		if _, err := h.gw.CreateSession(ctx, gateway.HashKey(key), time.Now().Add(time.Hour)); !errors.Is(err, gateway.ErrTenantDisabled) {
			t.Fatalf("new session of a disabled tenant: %v", err)
		}
		if code, _ := h.do("GET", "/api/jobs/"+j.ID, h.adminKey, nil, nil); code != 200 {
			t.Fatalf("the disabled tenant's job: %d", code)
		}
		if code, raw := h.do("POST", "/api/admin/tenants/"+tid+"/enable", h.adminKey, nil, nil); code != 200 || !strings.Contains(string(raw), `"disabled":false`) {
			t.Fatalf("enable: %d %s", code, raw)
		}
		if list(key) != 200 {
			t.Fatalf("enabled tenant: %d", list(key))
		}

		// Callback secret: readable and rotatable by the admin only.
		var sec struct {
			Secret string `json:"callback_secret"`
		}
		if code, raw := h.do("GET", "/api/admin/tenants/"+tid+"/callback-secret", h.adminKey, nil, &sec); code != 200 || !strings.HasPrefix(sec.Secret, "whsec_") {
			t.Fatalf("callback secret: %d %s", code, raw)
		}
		old := sec.Secret
		if code, _ := h.do("GET", "/api/admin/tenants/"+tid+"/callback-secret", key, nil, nil); code != 401 {
			t.Fatalf("callback secret with a tenant key: %d", code)
		}
		h.do("POST", "/api/admin/tenants/"+tid+"/rotate-callback-secret", h.adminKey, nil, &sec)
		if got, _ := h.store.Tenant(ctx, tid); sec.Secret == old || got.Secret != sec.Secret {
			t.Fatalf("rotated callback secret: %q (was %q), stored %q", sec.Secret, old, got.Secret)
		}

		// Revoking a tenant's sessions.
		sess, _ = h.gw.CreateSession(ctx, gateway.HashKey(key), time.Now().Add(time.Hour))
		if code, raw := h.do("DELETE", "/api/admin/tenants/"+tid+"/sessions", h.adminKey, nil, nil); code != 200 || !strings.Contains(string(raw), `"sessions_revoked":1`) {
			t.Fatalf("revoke sessions: %d %s", code, raw)
		}
		if _, err := h.gw.SessionPrincipal(ctx, sess); !errors.Is(err, gateway.ErrNotFound) {
			t.Fatalf("revoked session: %v", err)
		}

		// Admin key rotation, with and without overlap; admin sessions end.
		asess, _ := h.gw.CreateSession(ctx, gateway.HashKey(h.adminKey), time.Now().Add(time.Hour))
		var arot struct {
			AdminKey string `json:"admin_key"`
		}
		if code, raw := h.do("POST", "/api/admin/rotate-key", h.adminKey, `{"overlap_seconds":600}`, &arot); code != 200 || arot.AdminKey == "" {
			t.Fatalf("admin rotate: %d %s", code, raw)
		}
		if _, err := h.gw.SessionPrincipal(ctx, asess); !errors.Is(err, gateway.ErrNotFound) {
			t.Fatalf("admin session after rotation: %v", err)
		}
		adminList := func(k string) int { code, _ := h.do("GET", "/api/admin/tenants", k, nil, nil); return code }
		if adminList(h.adminKey) != 200 || adminList(arot.AdminKey) != 200 {
			t.Fatalf("admin keys during the overlap: %d %d", adminList(h.adminKey), adminList(arot.AdminKey))
		}
		oldAdmin, mid := h.adminKey, arot.AdminKey
		h.do("POST", "/api/admin/rotate-key", mid, `{"overlap_seconds":0}`, &arot)
		if adminList(oldAdmin) != 401 || adminList(mid) != 401 || adminList(arot.AdminKey) != 200 {
			t.Fatalf("admin keys after rotation without overlap: %d %d %d", adminList(oldAdmin), adminList(mid), adminList(arot.AdminKey))
		}
	})
}

// Item 7: /metrics can require a token or move to its own listener, and an
// admin PATCH field name never becomes a metric label.
func TestMetricsExposure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sqlite://"+t.TempDir()+"/m.db", hopts{workers: -1, cfg: func(c *gateway.Config) { c.MetricsToken = "mtok" }})
	if code, _ := h.do("GET", "/metrics", "", nil, nil); code != 401 {
		t.Fatalf("/metrics without the token: %d", code)
	}
	if code, _ := h.do("GET", "/metrics", h.adminKey, nil, nil); code != 401 {
		t.Fatalf("/metrics with another key: %d", code)
	}
	var tenants struct {
		Tenants []struct{ ID string } `json:"tenants"`
	}
	h.do("GET", "/api/admin/tenants", h.adminKey, nil, &tenants)
	code, raw := h.do("PATCH", "/api/admin/tenants/"+tenants.Tenants[0].ID, h.adminKey, `{"evil_label_x1":1,"evil_label_x2":2}`, nil)
	if code != 400 || !strings.Contains(string(raw), "unknown_field") {
		t.Fatalf("unknown PATCH field: %d %s", code, raw)
	}
	code, body := h.do("GET", "/metrics", "mtok", nil, nil)
	if code != 200 || !strings.Contains(string(body), "hourglass_bad_requests_total") || strings.Contains(string(body), "evil_label") {
		t.Fatalf("/metrics with the token: %d\n%s", code, body)
	}

	sep := newHarness(t, "sqlite://"+t.TempDir()+"/m2.db", hopts{workers: -1, cfg: func(c *gateway.Config) { c.SeparateMetrics = true }})
	if code, _ := sep.do("GET", "/metrics", "", nil, nil); code == 200 {
		t.Fatalf("/metrics on the API with SeparateMetrics: %d", code)
	}
	rec := httptest.NewRecorder()
	sep.gw.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "hourglass_jobs") {
		t.Fatalf("MetricsHandler: %d", rec.Code)
	}
}

// Item 7: during a webhook secret rotation, deliveries signed with either
// secret are accepted (the emulator signs with the old one).
func TestWebhookSecretRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sqlite://"+t.TempDir()+"/w.db", hopts{cfg: func(c *gateway.Config) {
		c.WebhookSecrets = append([]string{"whsec_the_new_one"}, c.WebhookSecrets...)
	}})
	j := h.wait(h.submit("ai-image-generator", "", "").ID)
	if j.Status != "stored" || count(h.events(j.ID), "webhook") == 0 {
		t.Fatalf("job %s, events %v", j.Status, h.events(j.ID))
	}
}
