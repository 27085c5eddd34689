package web_test

import (
	"bufio"
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

// Nothing of the dashboard is served without a session: pages redirect to
// the sign-in page, assets, outputs and streams answer 401.
func TestNoPageOrAssetWithoutSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	id := e.submit(e.tenantKey, "ai-image-generator", nil)
	e.wait(id)
	pages := []string{"/", "/jobs", "/jobs/" + id, "/overview", "/submit", "/submit/ai-image-generator", "/?status=stored"}
	assets := []string{"/static/app.css", "/static/app.js", "/jobs/" + id + "/outputs/0", "/jobs/" + id + "/outputs/0?download=1",
		"/stream", "/jobs/" + id + "/stream"}
	cookies := map[string]string{
		"none":     "",
		"garbage":  "hg_session=garbage",
		"forged":   "hg_session=eyJrIjoiYWJjIiwibiI6Im4iLCJlIjo5OTk5OTk5OTk5fQ.AAAA",
		"unsigned": "hg_session=eyJrIjoiYWJjIiwibiI6Im4iLCJlIjo5OTk5OTk5OTk5fQ",
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for name, cookie := range cookies {
		for _, p := range append(pages, assets...) {
			req, _ := http.NewRequest("GET", e.srv.URL+p, nil)
			if cookie != "" {
				req.Header.Set("Cookie", cookie)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			isPage := false
			for _, pg := range pages {
				isPage = isPage || pg == p
			}
			if isPage {
				if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
					t.Errorf("%s cookie, GET %s: %d %q, want a redirect to /login", name, p, resp.StatusCode, resp.Header.Get("Location"))
				}
			} else if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s cookie, GET %s: %d, want 401", name, p, resp.StatusCode)
			}
		}
	}
	// The sign-in page itself needs no asset: its stylesheet is inline,
	// allowed by a per-response CSP nonce.
	c := e.client()
	resp, page := c.get("/login")
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(csp, "'nonce-") || strings.Contains(page, `href="/static/`) {
		t.Fatalf("login page: %d CSP %q", resp.StatusCode, csp)
	}
	// A wrong key does not sign in.
	resp, body := c.postForm("/login", url.Values{"csrf": {csrfOf(t, page)}, "key": {"hgt_wrong"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not the admin key or a tenant key") {
		t.Fatalf("wrong key: %d", resp.StatusCode)
	}
	// Signed in, the same URLs work; the cookie is HttpOnly and SameSite.
	c = e.client()
	_, page = c.get("/login")
	resp, _ = c.postForm("/login", url.Values{"csrf": {csrfOf(t, page)}, "key": {e.tenantKey}})
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "hg_session" {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.MaxAge <= 0 {
		t.Fatalf("session cookie: %+v", sess)
	}
	for _, p := range append(pages, assets[:4]...) {
		if resp, _ := c.get(p); resp.StatusCode != http.StatusOK {
			t.Errorf("signed in, GET %s: %d", p, resp.StatusCode)
		}
	}
	// After sign-out the cookie is gone.
	csrf := c.login(e.tenantKey)
	c.postForm("/logout", url.Values{"csrf": {csrf}})
	if resp, _ := c.get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
}

// Every POST needs the CSRF token of the session (or, for sign-in, the
// token bound to the sign-in cookie).
func TestCSRFRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	c := e.client()
	csrf := c.login(e.tenantKey)
	other := e.client()
	otherCSRF := other.login(e.tenantKey) // a valid token, of another session

	form := func(tok string) url.Values {
		v := url.Values{"style.prompt": {"a cat"}, "image_count": {"1"}, "name": {"csrf"}}
		if tok != "" {
			v.Set("csrf", tok)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		tok  string
	}{{"missing", ""}, {"wrong", "AAAA"}, {"other session's", otherCSRF}} {
		for _, path := range []string{"/submit/ai-image-generator", "/logout"} {
			resp, _ := c.postForm(path, form(tc.tok))
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s token, POST %s: %d, want 403", tc.name, path, resp.StatusCode)
			}
		}
		// Multipart too.
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k, v := range form(tc.tok) {
			mw.WriteField(k, v[0])
		}
		mw.Close()
		req, _ := http.NewRequest("POST", e.srv.URL+"/submit/ai-image-generator", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s token, multipart submit: %d, want 403", tc.name, resp.StatusCode)
		}
	}
	// Nothing was submitted; still signed in (logout was refused).
	if jobs, _ := e.store.ListJobs(context.Background(), gateway.JobFilter{}); len(jobs) != 0 {
		t.Fatalf("%d jobs created by refused posts", len(jobs))
	}
	if resp, _ := c.get("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("session ended by a refused logout: %d", resp.StatusCode)
	}
	// A cross-site POST is refused even with the right token.
	req, _ := http.NewRequest("POST", e.srv.URL+"/logout", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d", resp.StatusCode)
	}
	// With its token the submit goes through.
	resp, body := c.postForm("/submit/ai-image-generator", form(csrf))
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/jobs/job_") {
		t.Fatalf("submit with token: %d %.400s", resp.StatusCode, body)
	}
	// Sign-in: without the sign-in cookie, or with a token of another one.
	fresh := e.client()
	resp, _ = fresh.postForm("/login", url.Values{"key": {e.tenantKey}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without token: %d", resp.StatusCode)
	}
	_, page := other.get("/login")
	_, _ = fresh.get("/login") // fresh has its own sign-in cookie
	resp, _ = fresh.postForm("/login", url.Values{"key": {e.tenantKey}, "csrf": {csrfOf(t, page)}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login with another browser's token: %d", resp.StatusCode)
	}
}

// One tenant never sees another's jobs: list, detail, outputs, streams.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	bKey := e.newTenant("tenant-b")
	aJob := e.submit(e.tenantKey, "ai-image-generator", func(p map[string]any) { p["name"] = "secret-of-a" })
	bJob := e.submit(bKey, "ai-image-generator", nil)
	e.wait(aJob)
	e.wait(bJob)

	b := e.client()
	b.login(bKey)
	_, list := b.get("/")
	if !contains(list, bJob) || contains(list, aJob) || contains(list, "secret-of-a") {
		t.Fatalf("tenant b's list: has own %v, has a's %v", contains(list, bJob), contains(list, aJob))
	}
	// Tenant filter is the admin's only.
	if _, l := b.get("/?tenant=ten_default"); contains(l, aJob) {
		t.Fatal("tenant filter leaked another tenant's jobs")
	}
	for _, p := range []string{"/jobs/" + aJob, "/jobs/" + aJob + "/outputs/0", "/jobs/" + aJob + "/outputs/0?download=1", "/jobs/" + aJob + "/stream"} {
		if resp, body := b.get(p); resp.StatusCode != http.StatusNotFound || contains(body, "secret-of-a") {
			t.Errorf("tenant b, GET %s: %d", p, resp.StatusCode)
		}
	}
	if _, ov := b.get("/overview"); contains(ov, ">default<") {
		t.Error("overview shows another tenant")
	}
	// The list stream, from the beginning of time, carries b's job only.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/stream?since=0", nil)
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		got.WriteString(sc.Text() + "\n")
	}
	resp.Body.Close()
	if !contains(got.String(), bJob) || contains(got.String(), aJob) {
		t.Fatalf("tenant b's stream: own %v, a's %v", contains(got.String(), bJob), contains(got.String(), aJob))
	}
	// The admin sees both, and can filter by tenant.
	admin := e.client()
	admin.login(e.adminKey)
	if _, l := admin.get("/"); !contains(l, aJob) || !contains(l, bJob) {
		t.Fatal("admin list misses jobs")
	}
	if _, l := admin.get("/?tenant=ten_default"); !contains(l, aJob) || contains(l, bJob) {
		t.Fatal("admin tenant filter")
	}
	if resp, _ := admin.get("/jobs/" + aJob + "/outputs/0"); resp.StatusCode != http.StatusOK {
		t.Fatalf("admin output: %d", resp.StatusCode)
	}
}

// The dashboard's submit form follows the gateway's upload limit
// (--max-upload-bytes), not a limit of its own.
func TestDashboardUploadLimitFollowsGateway(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, 2000, func(c *gateway.Config) { c.MaxUploadBytes = 64 << 10 })
	c := e.client()
	csrf := c.login(e.tenantKey)
	post := func(size int) int {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("csrf", csrf)
		_ = mw.WriteField("name", "limit")
		fw, _ := mw.CreateFormFile("image_file_path", "in.png")
		_, _ = fw.Write(bytes.Repeat([]byte{'x'}, size))
		mw.Close()
		req, _ := http.NewRequest("POST", e.srv.URL+"/submit/ai-image-upscaler", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// 64 KiB + 1 MiB of form: a 2 MiB file is refused before it is read.
	if code := post(2 << 20); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 MiB form with a 64 KiB limit: %d, want 413", code)
	}
	// Under the form limit it reaches the gateway's own check (not a 413
	// from the form).
	if code := post(1 << 10); code == http.StatusRequestEntityTooLarge {
		t.Fatalf("1 KiB file refused as too large: %d", code)
	}
}
