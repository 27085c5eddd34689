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
