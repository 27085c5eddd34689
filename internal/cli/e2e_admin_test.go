package cli_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startGateway runs `hourglass serve` (embedded emulator) in another
// process and returns its URL, admin key and tenant key.
func startGateway(t *testing.T) (string, string, string) {
	t.Helper()
	dir := t.TempDir()
	out, errb := startProcess(t, nil, "serve", "--addr", "127.0.0.1:0", "--db", "sqlite://"+filepath.Join(dir, "hg.db"),
		"--storage", "file://"+filepath.Join(dir, "outputs"), "--emulator-speed", "200", "--workers", "2")
	waitFor(t, "the gateway's banner", 30*time.Second, func() bool {
		return strings.Contains(out.String(), "listening on ") && strings.Contains(out.String(), "tenant key: ")
	})
	banner := out.String()
	key := func(label string) string {
		m := regexp.MustCompile(label + `:\s+(\S+)`).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("no %s in the banner:\n%s\n%s", label, banner, errb.String())
		}
		return m[1]
	}
	return strings.Fields(strings.SplitN(banner, "listening on ", 2)[1])[0], key("admin key"), key("tenant key")
}

func TestE2EAdmin(t *testing.T) {
	t.Parallel()
	gw, adminKey, tenantKey := startGateway(t)
	cfg := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + cfg}
	hg := func(argv ...string) run { t.Helper(); return hourglass(t, runOpts{env: env}, argv...) }
	if r := hg("config", "set", "--profile", "gw", "gateway", gw); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := hourglass(t, runOpts{env: env, stdin: strings.NewReader(adminKey + "\n")}, "config", "set", "--profile", "gw", "admin_key"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	p := []string{"--profile", "gw"}

	r := hg(append([]string{"admin", "tenants", "list"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "ten_default") || !strings.Contains(r.stdout, "BUDGET") {
		t.Fatalf("tenants list: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = hg(append([]string{"admin", "tenants", "create", "acme", "--budget", "100", "--json"}, p...)...)
	var created struct {
		ID     string `json:"id"`
		Key    string `json:"api_key"`
		Budget *int64 `json:"credit_budget"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &created) != nil || created.ID == "" || created.Key == "" || created.Budget == nil || *created.Budget != 100 {
		t.Fatalf("create: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = hg(append([]string{"admin", "tenants", "update", created.ID, "--budget", "none", "--max-in-flight", "2"}, p...)...)
	if r.code != 0 || !regexp.MustCompile(created.ID+`\s+acme\s+none\s+0\s+2\s`).MatchString(r.stdout) {
		t.Fatalf("update: %d %s %s", r.code, r.stdout, r.stderr)
	}
	for _, bad := range [][]string{{"update", created.ID}, {"update", created.ID, "--budget", "-3"}, {"update", created.ID, "--max-in-flight", "0"}} {
		if r := hg(append(append([]string{"admin", "tenants"}, bad...), p...)...); r.code != 2 {
			t.Errorf("%v: exit %d %s", bad, r.code, r.stderr)
		}
	}
	if r := hg(append([]string{"admin", "tenants", "update", "ten_nope", "--budget", "5"}, p...)...); r.code != 3 || !strings.Contains(r.stderr, "404") {
		t.Errorf("update of a missing tenant: %d %s", r.code, r.stderr)
	}

	// A job of the default tenant, seen by the admin.
	req, _ := http.NewRequest(http.MethodPost, gw+"/api/jobs", strings.NewReader(`{"tool":"ai-image-generator","params":{"image_count":1,"style":{"prompt":"x"}}}`))
	req.Header.Set("Authorization", "Bearer "+tenantKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var job struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	waitFor(t, "the job to be stored", 30*time.Second, func() bool {
		r := hg(append([]string{"admin", "jobs", "list", "--status", "stored"}, p...)...)
		return strings.Contains(r.stdout, job.ID)
	})
	r = hg(append([]string{"admin", "jobs", "get", job.ID, "--json"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `"status":"stored"`) {
		t.Fatalf("jobs get: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := hg(append([]string{"admin", "jobs", "delete", job.ID}, p...)...); r.code != 0 {
		t.Fatalf("jobs delete: %d %s", r.code, r.stderr)
	}
	if r := hg(append([]string{"admin", "jobs", "get", "job_nope"}, p...)...); r.code != 3 || !strings.Contains(r.stderr, "404") {
		t.Fatalf("get of a missing job: %d %s", r.code, r.stderr)
	}

	// Bad input: a tenant key, an unreachable gateway, no key.
	if r := hourglass(t, runOpts{}, "admin", "tenants", "list", "--gateway", gw, "--admin-key", tenantKey); r.code != 3 || !strings.Contains(r.stderr, "admin key") {
		t.Errorf("tenant key: %d %s", r.code, r.stderr)
	}
	if r := hourglass(t, runOpts{}, "admin", "tenants", "list", "--gateway", "http://127.0.0.1:1", "--admin-key", "k", "--json"); r.code != 3 || !strings.Contains(r.stdout, `"exit_code":3`) {
		t.Errorf("unreachable: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := hourglass(t, runOpts{}, "admin", "jobs", "list", "--gateway", gw); r.code != 2 || !strings.Contains(r.stderr, "no gateway key") {
		t.Errorf("no key: %d %s", r.code, r.stderr)
	}

	// Key rotation and disabling.
	r = hg(append([]string{"admin", "tenants", "rotate-key", created.ID, "--overlap", "0", "--json"}, p...)...)
	var rot struct {
		Key string `json:"api_key"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rot) != nil || rot.Key == "" || rot.Key == created.Key {
		t.Fatalf("rotate-key: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = hg(append([]string{"admin", "tenants", "disable", created.ID}, p...)...)
	if r.code != 0 || !regexp.MustCompile(created.ID+`.*disabled`).MatchString(r.stdout) {
		t.Fatalf("disable: %d %s %s", r.code, r.stdout, r.stderr)
	}
	status := func(key string) int {
		req, _ := http.NewRequest(http.MethodGet, gw+"/api/jobs", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if old, now := status(created.Key), status(rot.Key); old != http.StatusUnauthorized || now != http.StatusForbidden {
		t.Fatalf("after rotate (no overlap) and disable: old key %d (want 401), new key %d (want 403)", old, now)
	}
	if r := hg(append([]string{"admin", "tenants", "enable", created.ID}, p...)...); r.code != 0 || !strings.Contains(r.stdout, "active") {
		t.Fatalf("enable: %d %s %s", r.code, r.stdout, r.stderr)
	}
}
