package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/hourglasshq/hourglass/gateway/web"
)

// Issue 11 item 7: after sign-in, next= only leads to a path of this
// origin, whatever browsers would make of it.
func TestSignInRedirectStaysOnSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	for _, next := range []string{"/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "//evil.example", "/\\evil.example",
		"/\\/evil.example", "https://evil.example/", "/ /evil.example", "\t//evil.example", "/\x00/evil", "/\u0085/evil", "javascript:alert(1)"} {
		c := e.client()
		_, page := c.get("/login")
		resp, _ := c.postForm("/login", url.Values{"csrf": {csrfOf(t, page)}, "key": {e.tenantKey}, "next": {next}})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/" {
			t.Errorf("next=%q: %d Location %q, want /", next, resp.StatusCode, loc)
		}
	}
	c := e.client()
	_, page := c.get("/login")
	resp, _ := c.postForm("/login", url.Values{"csrf": {csrfOf(t, page)}, "key": {e.tenantKey}, "next": {"/jobs?status=stored"}})
	if loc := resp.Header.Get("Location"); loc != "/jobs?status=stored" {
		t.Errorf("a same-site next: Location %q", loc)
	}
}

// The dashboard download route answers the same for another tenant's job
// as for none, and never echoes the path into Content-Disposition.
func TestDashboardDownloadScoped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	id := e.submit(e.tenantKey, "ai-image-generator", nil)
	e.wait(id)
	other := e.client()
	other.login(e.newTenant("other"))
	for _, p := range []string{"/jobs/" + id + "/outputs/0?download=1", "/jobs/job_doesnotexist/outputs/0?download=1",
		"/jobs/x%22%3B%20filename=evil.html/outputs/0?download=1"} {
		resp, body := other.get(p)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Disposition") != "" {
			t.Errorf("other tenant GET %s: %d %q %q", p, resp.StatusCode, resp.Header.Get("Content-Disposition"), body)
		}
	}
	own := e.client()
	own.login(e.tenantKey)
	resp, _ := own.get("/jobs/" + id + "/outputs/0?download=1")
	if d := resp.Header.Get("Content-Disposition"); resp.StatusCode != 200 || d != "attachment; filename="+id+"-0.png" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("own download: %d %v", resp.StatusCode, resp.Header)
	}
}

// Issue 11 item 6: a copied session cookie stops working after sign-out,
// after the key that signed in is rotated, and after the tenant is
// disabled (which also refuses sign-in).
func TestSessionsRevocable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	copied := func(c *client) string {
		u, _ := url.Parse(e.srv.URL)
		for _, ck := range c.hc.Jar.Cookies(u) {
			if ck.Name == "hg_session" {
				return ck.Name + "=" + ck.Value
			}
		}
		t.Fatal("no session cookie")
		return ""
	}
	works := func(cookie string) bool {
		req, _ := http.NewRequest("GET", e.srv.URL+"/jobs", nil)
		req.Header.Set("Cookie", cookie)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	c := e.client()
	csrf := c.login(e.tenantKey)
	cookie := copied(c)
	if !works(cookie) {
		t.Fatal("fresh session does not work")
	}
	c.postForm("/logout", url.Values{"csrf": {csrf}})
	if works(cookie) {
		t.Fatal("a copied cookie still works after sign-out")
	}

	c = e.client()
	c.login(e.tenantKey)
	cookie = copied(c)
	var tenants struct {
		Tenants []struct{ ID string } `json:"tenants"`
	}
	e.api("GET", "/api/admin/tenants", e.adminKey, nil, &tenants)
	tid := tenants.Tenants[0].ID
	var rot struct {
		APIKey string `json:"api_key"`
	}
	if code := e.api("POST", "/api/admin/tenants/"+tid+"/rotate-key", e.adminKey, map[string]any{"overlap_seconds": 600}, &rot); code != 200 {
		t.Fatalf("rotate: %d", code)
	}
	if works(cookie) {
		t.Fatal("a session survived the rotation of its key")
	}

	c = e.client()
	c.login(rot.APIKey)
	cookie = copied(c)
	if code := e.api("POST", "/api/admin/tenants/"+tid+"/disable", e.adminKey, nil, nil); code != 200 {
		t.Fatalf("disable: %d", code)
	}
	if works(cookie) {
		t.Fatal("a session survived disabling its tenant")
	}
	c = e.client()
	_, page := c.get("/login")
	resp, body := c.postForm("/login", url.Values{"csrf": {csrfOf(t, page)}, "key": {rot.APIKey}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "disabled") {
		t.Fatalf("sign-in of a disabled tenant: %d", resp.StatusCode)
	}
}

// Issue 11 item 7: cookies are Secure behind a TLS proxy: always with
// SecureCookies (serve --public-url https://...), and on
// X-Forwarded-Proto: https only from a trusted proxy.
func TestSecureCookiesBehindProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	secure := func(opts web.Options, remote, proto string) bool {
		opts.API = e.gw.Handler()
		req := httptest.NewRequest("GET", "/login", nil)
		req.RemoteAddr = remote
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		rec := httptest.NewRecorder()
		web.New(e.gw, opts).ServeHTTP(rec, req)
		cookies := rec.Result().Cookies()
		if len(cookies) == 0 {
			t.Fatalf("no cookie from /login: %d", rec.Code)
		}
		return cookies[0].Secure
	}
	proxy := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		opts          web.Options
		remote, proto string
		want          bool
	}{
		{web.Options{}, "10.1.2.3:5000", "https", false},
		{web.Options{SecureCookies: true}, "192.0.2.1:5000", "", true},
		{web.Options{TrustedProxies: proxy}, "10.1.2.3:5000", "https", true},
		{web.Options{TrustedProxies: proxy}, "192.0.2.1:5000", "https", false},
		{web.Options{TrustedProxies: proxy}, "10.1.2.3:5000", "http", false},
	} {
		if got := secure(tc.opts, tc.remote, tc.proto); got != tc.want {
			t.Errorf("%+v from %s proto %q: Secure=%v, want %v", tc.opts, tc.remote, tc.proto, got, tc.want)
		}
	}
}

// Issue 11 item 7: NUL or invalid UTF-8 in a dashboard path is a 400, not
// a database error.
func TestDashboardInvalidTextIs400(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	c := e.client()
	c.login(e.tenantKey)
	for _, p := range []string{"/jobs/job_%00x", "/jobs/job_%ffx", "/jobs/job_%00x/outputs/0?download=1", "/jobs?cursor=%00"} {
		if resp, _ := c.get(p); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
}
