package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Issue 11 item 7: after sign-in, next= only leads to a path of this
// origin, whatever browsers would make of it.
func TestSignInRedirectStaysOnSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2000)
	for _, next := range []string{"/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "//evil.example", "/\\evil.example",
		"/\\/evil.example", "https://evil.example/", "/ /evil.example", "\t//evil.example", "/\x00/evil", "/\u0085/evil", "javascript:alert(1)"} {
		c := e.client()
		_, page := c.get("/login?next=" + url.QueryEscape(next))
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
