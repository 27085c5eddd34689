package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog/catalogtest"
)

// serve --spec FILE: the gateway and its embedded emulator work from the
// file, so a tool only it has runs through /api/jobs and the drop-in /v1
// routes to a stored output, with no rebuild.
func TestServeSpecExtraTool(t *testing.T) {
	t.Setenv("MAGIC_HOUR_API_KEY", "")
	t.Setenv("HOURGLASS_WEBHOOK_SECRET", "")
	t.Setenv("MAGIC_HOUR_WEBHOOK_SECRET", "")
	t.Setenv(EnvSpec, "")
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.json")
	if err := os.WriteFile(spec, catalogtest.ExtraSpec(), 0o600); err != nil {
		t.Fatal(err)
	}
	base, out, stop := startServe(t, dir, "--spec", spec, "--spec-refresh", "24h")
	defer stop()
	var tenantKey string
	for _, line := range strings.Split(out.String(), "\n") {
		if k, ok := strings.CutPrefix(strings.TrimSpace(line), "tenant key: "); ok {
			tenantKey = k
		}
	}
	do := func(method, path, body string, v any) (int, string) {
		req, _ := http.NewRequest(method, path, strings.NewReader(body))
		if !strings.HasPrefix(path, "http") {
			req, _ = http.NewRequest(method, base+path, strings.NewReader(body))
		}
		req.Header.Set("Authorization", "Bearer "+tenantKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if v != nil {
			_ = json.Unmarshal(raw, v)
		}
		return resp.StatusCode, string(raw)
	}
	params := `{"name":"My song","style":{"prompt":"calm piano"}}`
	var job struct{ ID, Status string }
	if code, raw := do("POST", "/api/jobs", `{"tool":"`+catalogtest.ExtraTool+`","params":`+params+`}`, &job); code != 202 {
		t.Fatalf("submit: %d %s", code, raw)
	}
	for deadline := time.Now().Add(30 * time.Second); job.Status != "stored"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || job.Status == "error" {
			t.Fatalf("job %s: %s", job.ID, job.Status)
		}
		do("GET", "/api/jobs/"+job.ID, "", &job)
	}
	if code, _ := do("GET", "/api/jobs/"+job.ID+"/outputs/0", "", nil); code != 200 {
		t.Errorf("output: %d", code)
	}

	var created struct{ ID string }
	if code, raw := do("POST", "/v1/"+catalogtest.ExtraTool, params, &created); code != 200 || created.ID == "" {
		t.Fatalf("drop-in create: %d %s", code, raw)
	}
	var p struct {
		Status    string
		Downloads []struct{ URL string }
	}
	for deadline := time.Now().Add(30 * time.Second); p.Status != "complete"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || p.Status == "error" {
			t.Fatalf("drop-in project %s: %s", created.ID, p.Status)
		}
		do("GET", "/v1/audio-projects/"+created.ID, "", &p)
	}
	if len(p.Downloads) == 0 {
		t.Fatal("no downloads")
	}
	if code, _ := do("GET", p.Downloads[0].URL, "", nil); code != 200 {
		t.Errorf("download: %d", code)
	}
}

// A --spec that does not load stops serve before it starts, naming what
// is wrong; --spec-refresh without --spec is a usage error.
func TestServeSpecRefused(t *testing.T) {
	t.Setenv(EnvSpec, "")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"openapi": "3.0.2", "info": {"title": "x", "version": "1"}, "paths": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--spec", bad}, "--spec " + bad},
		{[]string{"--spec-refresh", "1h"}, "--spec-refresh needs --spec"},
	} {
		root := NewRoot()
		root.SetOut(&syncBuffer{})
		root.SetErr(&syncBuffer{})
		root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite://" + filepath.Join(dir, "hg.db"),
			"--storage", "file://" + filepath.Join(dir, "outputs")}, c.args...))
		if err := root.ExecuteContext(t.Context()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.want)
		}
	}
}
