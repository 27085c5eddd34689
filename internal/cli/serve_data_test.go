package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveClient is a tenant's view of a started `hourglass serve`.
type serveClient struct {
	t         *testing.T
	base, key string
}

func tenantKeyOf(banner string) string {
	for _, line := range strings.Split(banner, "\n") {
		if k, ok := strings.CutPrefix(strings.TrimSpace(line), "tenant key: "); ok {
			return k
		}
	}
	return ""
}

func (c serveClient) do(method, path, body string, v any) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	if v != nil {
		_ = json.Unmarshal(raw, v)
	}
	return resp.StatusCode, string(raw)
}

// Issue 11 item 14: with the embedded emulator, a loopback callback_url is
// accepted without --allow-private-callbacks.
func TestServeEmbeddedAllowsLoopbackCallbacks(t *testing.T) {
	t.Setenv("MAGIC_HOUR_API_KEY", "")
	t.Setenv("HOURGLASS_WEBHOOK_SECRET", "")
	t.Setenv("MAGIC_HOUR_WEBHOOK_SECRET", "")
	t.Setenv("HOURGLASS_ALLOW_PRIVATE_CALLBACKS", "")
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer recv.Close()
	base, out, stop := startServe(t, t.TempDir())
	defer stop()
	c := serveClient{t, base, tenantKeyOf(out.String())}
	code, raw := c.do("POST", "/api/jobs", `{"tool":"ai-image-generator","params":{"style":{"prompt":"a cat"},"image_count":1},"callback_url":"`+recv.URL+`/cb"}`, nil)
	if code != http.StatusAccepted {
		t.Fatalf("loopback callback with the embedded emulator: %d %s, want 202", code, raw)
	}
}

// startServeArgs is startServe with extra flags.
func startServeArgs(t *testing.T, dir string, extra ...string) (string, *syncBuffer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	root := NewRoot()
	out, errb := &syncBuffer{}, &syncBuffer{}
	root.SetOut(out)
	root.SetErr(errb)
	root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite://" + filepath.Join(dir, "hg.db"),
		"--storage", "file://" + filepath.Join(dir, "outputs"), "--workers", "2"}, extra...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v\n%s", err, errb.String())
			}
		case <-time.After(30 * time.Second):
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

// Issue 11 item 10: a restart of `hourglass serve` with the embedded
// emulator keeps its jobs: one in flight at the restart is stored after it
// (not error upstream_not_found), and the emulator is back on its port.
func TestServeEmbeddedRestartKeepsJobsInFlight(t *testing.T) {
	t.Setenv("MAGIC_HOUR_API_KEY", "")
	t.Setenv("HOURGLASS_WEBHOOK_SECRET", "")
	t.Setenv("MAGIC_HOUR_WEBHOOK_SECRET", "")
	dir := t.TempDir()
	base, out, stop := startServeArgs(t, dir, "--emulator-speed", "40")
	c := serveClient{t, base, tenantKeyOf(out.String())}
	emuURL := func(banner string) string {
		return strings.Fields(strings.SplitN(banner, "speed by ", 2)[1])[0]
	}
	first := emuURL(out.String())
	var job struct {
		ID, Status string
		UpstreamID string `json:"upstream_id"`
	}
	if code, raw := c.do("POST", "/api/jobs", `{"tool":"text-to-video","params":{"end_seconds":5,"style":{"prompt":"a cat"}}}`, &job); code != 202 {
		stop()
		t.Fatalf("submit: %d %s", code, raw)
	}
	for deadline := time.Now().Add(20 * time.Second); job.UpstreamID == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("job %s not created upstream: %s", job.ID, job.Status)
		}
		c.do("GET", "/api/jobs/"+job.ID, "", &job)
	}
	if job.Status == "stored" {
		stop()
		t.Fatalf("job finished before the restart; the test needs it in flight")
	}
	stop()

	base2, out2, stop2 := startServeArgs(t, dir, "--emulator-speed", "40")
	defer stop2()
	if second := emuURL(out2.String()); second != first {
		t.Errorf("emulator moved from %s to %s", first, second)
	}
	c.base = base2
	for deadline := time.Now().Add(60 * time.Second); job.Status != "stored"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) || job.Status == "error" {
			t.Fatalf("job %s after the restart: %s", job.ID, job.Status)
		}
		c.do("GET", "/api/jobs/"+job.ID, "", &job)
	}
}
