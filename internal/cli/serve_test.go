package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startServe runs `hourglass serve` in-process and returns its base URL,
// its output so far and a stop function that waits for a clean exit.
func startServe(t *testing.T, dir string, extra ...string) (string, *syncBuffer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	root := NewRoot()
	out, errb := &syncBuffer{}, &syncBuffer{}
	root.SetOut(out)
	root.SetErr(errb)
	root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite://" + filepath.Join(dir, "hg.db"),
		"--storage", "file://" + filepath.Join(dir, "outputs"), "--emulator-speed", "200", "--workers", "2"}, extra...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v\n%s", err, errb.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		s := out.String()
		if strings.Contains(s, "keys") && strings.Contains(s, "listening on ") {
			return strings.Fields(strings.SplitN(s, "listening on ", 2)[1])[0], out, stop
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s\n%s", err, s, errb.String())
		default:
		}
	}
	stop()
	t.Fatalf("no banner: %q", out.String())
	return "", nil, nil
}

func TestServeEmbeddedDefault(t *testing.T) {
	t.Setenv("MAGIC_HOUR_API_KEY", "")
	t.Setenv("HOURGLASS_WEBHOOK_SECRET", "")
	t.Setenv("MAGIC_HOUR_WEBHOOK_SECRET", "")
	dir := t.TempDir()
	base, out, stop := startServe(t, dir)
	banner := out.String()
	if !strings.HasPrefix(banner, "!!! UPSTREAM IS THE IN-PROCESS EMULATOR") {
		t.Errorf("the emulator is not announced first:\n%s", banner)
	}
	var tenantKey string
	for _, line := range strings.Split(banner, "\n") {
		if k, ok := strings.CutPrefix(strings.TrimSpace(line), "tenant key: "); ok {
			tenantKey = k
		}
	}
	if tenantKey == "" || !strings.Contains(banner, "admin key: ") || !strings.Contains(banner, "/hooks/magichour") {
		stop()
		t.Fatalf("banner lacks keys or webhook URL:\n%s", banner)
	}
	do := func(method, path, body string, v any) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tenantKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil {
			_ = json.NewDecoder(resp.Body).Decode(v)
		}
		return resp.StatusCode
	}
	var job struct {
		ID, Status string
	}
	if code := do("POST", "/api/jobs", `{"tool":"ai-image-generator","params":{"style":{"prompt":"a cat"},"image_count":1}}`, &job); code != 202 {
		stop()
		t.Fatalf("submit: %d", code)
	}
	for deadline := time.Now().Add(20 * time.Second); job.Status != "stored"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || job.Status == "error" {
			stop()
			t.Fatalf("job %s: %s", job.ID, job.Status)
		}
		do("GET", "/api/jobs/"+job.ID, "", &job)
	}
	if code := do("GET", "/api/jobs/"+job.ID+"/outputs/0", "", nil); code != 200 {
		t.Errorf("output: %d", code)
	}
	stop()

	// A second start on the same data keeps the keys and prints none.
	base2, out2, stop2 := startServe(t, dir)
	defer stop2()
	if strings.Contains(out2.String(), tenantKey) || strings.Contains(out2.String(), "admin key: ") {
		t.Errorf("keys printed again:\n%s", out2.String())
	}
	base = base2
	var again struct{ Status string }
	if code := do("GET", "/api/jobs/"+job.ID, "", &again); code != 200 || again.Status != "stored" {
		t.Errorf("after restart: %d %s", code, again.Status)
	}
}

// --lease and --upstream-speed (and their HOURGLASS_* variables) are
// checked before anything starts.
func TestServeLeaseAndUpstreamSpeedFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--lease", "500ms"}, want: "--lease: want at least 1s"},
		{env: map[string]string{"HOURGLASS_LEASE": "10ms"}, want: "--lease: want at least 1s, got 10ms"},
		{args: []string{"--upstream-speed", "0"}, want: "--upstream-speed: want a positive number"},
		{env: map[string]string{"HOURGLASS_UPSTREAM_SPEED": "-2"}, want: "--upstream-speed: want a positive number, got -2"},
		{env: map[string]string{"HOURGLASS_LEASE": "soon"}, want: "HOURGLASS_LEASE"},
	} {
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		dir := t.TempDir()
		root := NewRoot()
		root.SetOut(&syncBuffer{})
		root.SetErr(&syncBuffer{})
		root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite://" + filepath.Join(dir, "hg.db"),
			"--storage", "file://" + filepath.Join(dir, "outputs")}, c.args...))
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: err %v, want %q", c.args, c.env, err, c.want)
		}
		for k := range c.env {
			t.Setenv(k, "")
		}
	}
}
